"""The benchmark (``segstream bench``, ``scripts/bench``): what segstream sustains on this machine, beside its ceilings.

One module per thing measured, each running segstream's real processes in a
fresh namespace (:mod:`~stream.bench.engine`): :mod:`~stream.bench.collector`,
:mod:`~stream.bench.worker`, :mod:`~stream.bench.endtoend`,
:mod:`~stream.bench.latency`, :mod:`~stream.bench.timers`,
:mod:`~stream.bench.memory` and :mod:`~stream.bench.ceilings`; the batch
baseline and correctness check in :mod:`~stream.bench.sql`. Pure parts: the
workload and its ten rules (:mod:`~stream.bench.workload`),
:mod:`~stream.bench.percentiles`, :mod:`~stream.bench.report` and
:mod:`~stream.bench.options`. :mod:`~stream.bench.runner` runs the parts in
order; :mod:`~stream.bench.loadgen` is the HTTP load generator.
"""
