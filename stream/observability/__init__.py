"""Observability: per-process Prometheus metrics, health endpoints, structured logs, and the CLI's live views.

* :mod:`.exposition` — counters, gauges, histograms and the text format;
* :mod:`.lag` — consumer lag from committed offsets and fetch positions;
* :mod:`.health` — ``/metrics``, ``/healthz`` and ``/readyz`` routes for every process;
* :mod:`.worker` — the worker's metrics and its small HTTP server;
* :mod:`.logs` — JSON log lines;
* :mod:`.tail`, :mod:`.status` — ``segstream tail`` and ``segstream status``.
"""
