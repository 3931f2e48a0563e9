"""Destinations: deliver segment changes to webhooks, and keep external audience lists equal to segments.

``config`` (the destinations file), pure logic — ``signing`` (HMAC of bodies),
``retry`` (backoff schedule, what an answer means), ``audience`` (coalescing,
diffing) — and the I/O edges: ``http`` (one call), ``sink`` (one destination's
consumer loop), ``runner`` (every destination of the file, ``segstream destinations``).
"""
