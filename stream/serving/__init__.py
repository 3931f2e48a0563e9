"""Serving: the read-only HTTP query API over the Redis state (:mod:`stream.serving.api`).

Its Python client is :mod:`stream.client`.
"""
