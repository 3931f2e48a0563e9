"""Absence triggers: the `within` and `expires` edges, cancelling events, several triggers, deadlines, explain."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stream.rules import AbsenceCondition, Verdict, parse_condition
from stream.state.profile import Event, Profile, iso

H, D = 3_600_000, 86_400_000
A = 1_700_000_000_000  # the trigger's time
CART = {"event": "Product Added", "without": "Order Completed", "within": "24h"}


def absence(**yaml: Any) -> AbsenceCondition:
    condition = parse_condition(yaml)
    assert isinstance(condition, AbsenceCondition)
    return condition


def profile(*events: tuple[int, str] | tuple[int, str, dict[str, Any]]) -> Profile:
    history = [Event(e[0], e[1], e[2] if len(e) > 2 else {}) for e in events]  # type: ignore[misc]
    return Profile("c", history=sorted(history, key=lambda e: e.ts))


def holds_at(condition: AbsenceCondition, p: Profile, *times: int) -> list[bool]:
    return [condition.evaluate(p, t).holds for t in times]


def test_enters_exactly_when_within_has_passed_with_no_new_event() -> None:
    cart, p = absence(**CART), profile((A, "Product Added"))
    assert holds_at(cart, p, A, A + 24 * H - 1, A + 24 * H, A + 24 * H + 1) == [False, False, True, True]
    waiting = cart.evaluate(p, A + 24 * H - 1)
    assert waiting.deadline == A + 24 * H
    assert waiting.reason == f"Product Added without Order Completed within 1d: Product Added at {iso(A)}, 1d not passed yet"
    entered = cart.evaluate(p, A + 24 * H)
    assert entered == Verdict(True, f"Product Added without Order Completed within 1d: Product Added at {iso(A)}, no Order Completed since", A + 30 * D)


def test_a_cancelling_event_at_within_or_before_stops_it_one_at_the_trigger_time_does_not() -> None:
    cart = absence(**CART)
    at_edge = profile((A, "Product Added"), (A + 24 * H, "Order Completed"))
    assert holds_at(cart, at_edge, A + 24 * H - 1, A + 24 * H, A + 48 * H) == [False, False, False]
    assert cart.evaluate(at_edge, A + 24 * H).reason.endswith(f"then Order Completed at {iso(A + 24 * H)}")
    assert cart.evaluate(at_edge, A + 24 * H).deadline is None
    just_after = profile((A, "Product Added"), (A + 24 * H + 1, "Order Completed"))
    assert holds_at(cart, just_after, A + 24 * H, A + 24 * H + 1) == [True, False]
    same_time = profile((A, "Order Completed"), (A, "Product Added"))
    assert cart.evaluate(same_time, A + 24 * H).holds, "only an event strictly after the trigger cancels it"


def test_a_cancelling_event_before_the_trigger_does_not_count() -> None:
    p = profile((A - H, "Order Completed"), (A, "Product Added"))
    assert absence(**CART).evaluate(p, A + 24 * H).holds


def test_a_later_trigger_after_a_cancel_restarts_the_clock() -> None:
    cart = absence(**CART)
    p = profile((A, "Product Added"), (A + H, "Order Completed"), (A + 2 * H, "Product Added"))
    assert holds_at(cart, p, A + 24 * H, A + 26 * H - 1, A + 26 * H) == [False, False, True]
    assert cart.evaluate(p, A + 3 * H).deadline == A + 26 * H


def test_several_triggers_enter_with_the_first_and_stay_until_the_last_expires() -> None:
    cart = absence(**CART, expires="3d")
    p = profile((A, "Product Added"), (A + 5 * H, "Product Added"))
    entered = cart.evaluate(p, A + 24 * H)
    assert entered.holds and entered.deadline == A + 5 * H + 3 * D
    assert entered.reason.endswith(f"Product Added at {iso(A)}, no Order Completed since")
    assert cart.evaluate(p, A + 30 * H).reason.endswith(f"Product Added at {iso(A + 5 * H)}, no Order Completed since")
    assert holds_at(cart, p, A + 3 * D - 1, A + 3 * D, A + 5 * H + 3 * D - 1, A + 5 * H + 3 * D) == [True, True, True, False]


def test_the_trigger_expires() -> None:
    cart, p = absence(**CART), profile((A, "Product Added"))
    assert holds_at(cart, p, A + 30 * D - 1, A + 30 * D) == [True, False]
    assert cart.evaluate(p, A + 30 * D) == Verdict(False, "Product Added without Order Completed within 1d: no Product Added in the last 30d")


def test_a_future_cancelling_event_is_the_deadline() -> None:
    p = profile((A, "Product Added"), (A + 40 * H, "Order Completed"))
    assert absence(**CART).evaluate(p, A + 30 * H) == Verdict(
        True, f"Product Added without Order Completed within 1d: Product Added at {iso(A)}, no Order Completed since", A + 40 * H
    )


def test_where_and_without_where_filter_both_sides() -> None:
    checkout = absence(
        event="Product Added",
        where={"category": {"eq": "Shoes"}},
        without="page",
        without_where={"name": {"eq": "Checkout"}},
        within="2h",
    )
    p = profile((A, "Product Added", {"category": "Shoes"}), (A + H, "page", {"name": "Home"}))
    assert checkout.evaluate(p, A + 2 * H).holds, "a page other than Checkout does not cancel"
    assert not checkout.evaluate(profile((A, "Product Added", {"category": "Hats"})), A + 2 * H).holds
    cancelled = profile((A, "Product Added", {"category": "Shoes"}), (A + H, "page", {"name": "Checkout"}))
    assert not checkout.evaluate(cancelled, A + 2 * H).holds
    assert checkout.label == 'Product Added where category == "Shoes" without page where name == "Checkout" within 2h'


def test_any_event_cancels_when_without_is_any() -> None:
    idle = absence(event="Signed Up", without="$any", within="1h")
    assert idle.evaluate(profile((A, "Signed Up")), A + H).holds
    assert not idle.evaluate(profile((A, "Signed Up"), (A + 1, "page")), A + H).holds


def test_state_it_needs_and_defaults() -> None:
    cart = absence(**CART, where={"coupon": {"exists": True}}, without_where={"total": {"gt": 0}})
    assert cart.expires == 30 * D and cart.lookback_ms() == 30 * D
    assert absence(**CART, expires="7d").lookback_ms() == 7 * D
    assert cart.event_names() == {"Product Added", "Order Completed"}
    assert cart.properties() == {"coupon", "total"}


def test_expires_must_be_longer_than_within() -> None:
    with pytest.raises(ValidationError, match=r"expires \(1d\) must be longer than within \(2d\) .* 'expires: 4d'"):
        absence(event="A", without="B", within="2d", expires="1d")


def test_explain_names_the_trigger_and_what_cancelled_it() -> None:
    p = profile((A, "Product Added", {"sku": "X"}), (A + H, "Order Completed"))
    tree = absence(**CART).explain(p, A + 2 * H)
    assert tree["kind"] == "absence" and tree["holds"] is False and tree["deadline"] is None
    assert tree["rule"] == {"event": "Product Added", "without": "Order Completed", "within": "1d"}
    assert tree["trigger"] == {"at": iso(A), "event": "Product Added", "properties": {"sku": "X"}}
    assert tree["cancelled_by"] == {"at": iso(A + H), "event": "Order Completed", "properties": {}}
