"""Segment changes: deciding them and publishing them."""
