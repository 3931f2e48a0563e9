"""Missing-data monitoring: parsing SEGSTREAM_CRITICAL_FIELDS, counting, exporting."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from stream.config import Settings
from stream.ingest.quality import missing, parse_critical
from stream.serving.api import counter_lines


def test_missing_critical_fields_are_counted_per_event_and_field() -> None:
    critical = parse_critical("Order Completed:properties.revenue, identify:traits.email,Order Completed:properties.currency")
    counts: Counter[str] = Counter()
    missing({"type": "track", "event": "Order Completed", "properties": {"revenue": 0, "currency": ""}}, critical, counts)
    missing({"type": "track", "event": "Order Completed"}, critical, counts)
    missing({"type": "identify", "traits": {"email": None}}, critical, counts)
    missing({"type": "track", "event": "Page Viewed"}, critical, counts)
    assert counts == {
        "missing:Order Completed:properties.currency": 2,
        "missing:Order Completed:properties.revenue": 1,
        "missing:identify:traits.email": 1,
    }
    lines = counter_lines(dict(counts))
    assert 'segstream_missing_fields_total{event="Order Completed",field="properties.revenue"} 1' in lines


def test_a_malformed_setting_names_the_entry() -> None:
    with pytest.raises(ValidationError, match="'revenue' is not '<event>:<dotted path>'"):
        Settings(SEGSTREAM_CRITICAL_FIELDS="revenue")
