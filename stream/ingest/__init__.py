"""Ingest: Segment's Tracking API in front of Kafka.

* :mod:`stream.ingest.events`: Segment's event spec (pydantic models) and the pure
  normalisation into events-topic records: validation, clock-skew correction,
  ``messageId``, the record key. The record shape is documented there.
* :mod:`stream.ingest.collector`: the aiohttp server (``segstream collector``):
  endpoints, write keys, gzip, size limits, CORS, counters, producing to Kafka.
"""

from stream.ingest.events import BATCH, MAX_EVENT_BYTES, MAX_REQUEST_BYTES, EventError, Outcome, Record, normalise

__all__ = ["BATCH", "MAX_EVENT_BYTES", "MAX_REQUEST_BYTES", "EventError", "Outcome", "Record", "normalise"]
