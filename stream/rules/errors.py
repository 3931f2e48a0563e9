"""The rules package's exception."""

from __future__ import annotations


class RuleError(ValueError):
    """Rule files that cannot be used; ``errors`` lists every problem, one line each.

    Each line names the file, the segment and the field path, then what to do, e.g.
    ``rules/cart.yaml: segment 'cart_abandoners': condition.all[1].within: expected a duration like '24h', got '24 hours'``.
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        if len(errors) == 1:
            message = errors[0]
        else:
            message = f"{len(errors)} errors in the rules:\n" + "\n".join(f"  {e}" for e in errors)
        super().__init__(message)
