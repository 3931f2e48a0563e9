"""``segstream import``: customer history from files (CRM records, order tables) onto the events topic.

A mapping file (:mod:`stream.importer.mapping`) says how a row becomes an ``identify``
(``kind: profiles``) or a ``track`` (``kind: events``); :mod:`stream.importer.convert`
turns rows into events-topic records, pure; :mod:`stream.importer.sources` reads CSV,
JSON lines and Parquet; :mod:`stream.importer.checkpoint` keeps what a re-run may skip;
:mod:`stream.importer.run` produces the records, with progress, a summary and a file of
rejected rows.
"""
