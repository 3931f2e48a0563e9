"""Segment performance: outcomes in the window after entering, arms compared, and the replay-based measurement."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stream.analytics.intervals import newcombe, welch, wilson
from stream.analytics.outcomes import MemberOutcome, Outcome, compare, member_outcome
from stream.analytics.performance import PerformanceSpec, measure
from stream.analytics.tables import performance_table
from stream.cli import main
from stream.rules import RuleSet, load_rules
from stream.rules.holdout import holdout_group
from stream.state.profile import iso

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RULES = """\
segments:
  - name: viewers
    holdout: 50
    condition: {event: Product Viewed, within: 30d}
  - name: plain_viewers
    condition: {event: Product Viewed, within: 30d}
"""


def test_window_excludes_the_entry_moment_and_includes_its_end() -> None:
    events = [Outcome(100, "Order Completed", 9.0), Outcome(100 + DAY, "Order Completed", 4.0), Outcome(101 + DAY, "Email Opened", 0.0)]
    outcome = member_outcome(100, events, "Order Completed", DAY)
    assert outcome == MemberOutcome(converted=True, delivered=False, opened=False, clicked=False, revenue=4.0)


def test_email_rates_use_delivered_members_when_the_data_has_deliveries() -> None:
    def o(delivered: bool, opened: bool) -> MemberOutcome:
        return MemberOutcome(False, delivered, opened, False, 0.0)

    arms = {"treatment": [o(True, True), o(True, False), o(False, False)], "control": [o(True, False), o(False, False)]}
    figures = compare(arms, 0.95)
    assert figures["email_base"] == "delivered"
    assert figures["email_open"]["arms"]["treatment"] | {"ci": None} == {"n": 2, "count": 1, "rate": 0.5, "ci": None}
    assert figures["email_open"]["arms"]["control"]["rate"] == 0.0
    assert figures["email_open"]["lift"] is None  # control rate 0
    assert figures["email_open"]["difference"] == 0.5
    without = compare({"all": [o(False, True), o(False, False)]}, 0.95)
    assert without["email_base"] == "members" and without["email_open"]["arms"]["all"]["rate"] == 0.5
    assert "difference" not in without["email_open"]


def customers(group: str, count: int) -> list[str]:
    """The first ``count`` ids ``u<n>`` in ``group`` of ``viewers`` (50% holdout)."""
    found = (f"u{i}" for i in range(10_000) if holdout_group(f"u{i}", "viewers", 50) == group)
    return [next(found) for _ in range(count)]


def track(customer: str, event: str, ts: int, **properties: object) -> dict:
    return {"type": "track", "event": event, "userId": customer, "timestamp": iso(ts), "properties": properties}


def history(t0: int = T0) -> tuple[list[dict], dict]:
    """Treatment converts 6 of 10 within 3 days, control 2 of 10 (entries from ``t0`` on); the revenues, by hand."""
    treated, control = customers("treatment", 11), customers("control", 10)
    records = []
    for i, cid in enumerate(treated[:10]):
        entered = t0 + i * 3_600_000
        records.append(track(cid, "Product Viewed", entered))
        records.append(track(cid, "Email Delivered", entered + 1000))
        if i < 6:
            records.append(track(cid, "Order Completed", entered + 2 * DAY, revenue=30 + i))
        if i < 4:
            records.append(track(cid, "Email Opened", entered + 2000))
    records.append(track(treated[7], "Order Completed", t0 + 7 * 3_600_000 + 5 * DAY, revenue=100))  # after the window
    for i, cid in enumerate(control):
        entered = t0 + i * 3_600_000
        records.append(track(cid, "Product Viewed", entered))
        records.append(track(cid, "Email Delivered", entered + 1000))
        if i < 2:
            records.append(track(cid, "Order Completed", entered + DAY, revenue=20))
        if i < 3:
            records.append(track(cid, "Email Opened", entered + 2000))
    records.append(track(treated[10], "Product Viewed", t0 + 5 * DAY + 7 * 3_600_000))  # enters too late: censored
    treated_revenue = [30.0 + i for i in range(6)] + [0.0] * 4
    control_revenue = [20.0, 20.0] + [0.0] * 8
    return records, {"treated_revenue": treated_revenue, "control_revenue": control_revenue}


@pytest.fixture
def ruleset(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return load_rules(path)


def test_measure_replays_entries_with_their_group_and_counts_outcomes(ruleset: RuleSet) -> None:
    records, expected = history()
    report = measure(records, ruleset, 1000, PerformanceSpec(within_ms=3 * DAY), ["viewers", "plain_viewers"])
    viewers, plain = report["segments"]
    assert (viewers["entrants"], viewers["censored"], viewers["measured"]) == (21, 1, 20)
    conversion = viewers["conversion"]
    assert conversion["arms"]["treatment"] == {"n": 10, "count": 6, "rate": 0.6, "ci": wilson(6, 10)}
    assert conversion["arms"]["control"] == {"n": 10, "count": 2, "rate": 0.2, "ci": wilson(2, 10)}
    assert conversion["difference"] == pytest.approx(0.4)
    assert conversion["lift"] == pytest.approx(2.0)
    assert conversion["difference_ci"] == newcombe(6, 10, 2, 10)
    assert viewers["email_base"] == "delivered"
    assert viewers["email_open"]["arms"]["treatment"]["rate"] == 0.4 and viewers["email_open"]["arms"]["control"]["rate"] == 0.3
    assert viewers["email_click"]["arms"]["treatment"]["count"] == 0
    revenue = viewers["revenue_per_member"]
    assert revenue["arms"]["treatment"]["mean"] == pytest.approx(sum(expected["treated_revenue"]) / 10)
    assert revenue["arms"]["control"]["mean"] == pytest.approx(4.0)
    assert revenue["difference_ci"] == pytest.approx(welch(expected["treated_revenue"], expected["control_revenue"]))
    assert list(plain["conversion"]["arms"]) == ["all"] and plain["conversion"]["arms"]["all"]["count"] == 8
    assert "difference" not in plain["conversion"]
    table = performance_table(report)
    assert "viewers (holdout 50%): 21 entered, 20 measured, 1 too recent" in table
    assert "60.0% (6/10)" in table and "+40.0 pts" in table and "+200.0%" in table


def test_entry_period_keeps_first_entries_inside_it(ruleset: RuleSet) -> None:
    records, _ = history()
    spec = PerformanceSpec(within_ms=3 * DAY, since=T0 + 5 * 3_600_000, until=T0 + 8 * 3_600_000)
    viewers = measure(records, ruleset, 1000, spec, ["viewers"])["segments"][0]
    assert viewers["entrants"] == 6  # hours 5, 6, 7 of each arm


def test_cli_prints_json_and_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records, _ = history()
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    assert main(["analytics", "performance", str(events), "--rules", str(rules), "--within", "3d", "--segment", "viewers", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["within"] == "3d" and report["segments"][0]["conversion"]["arms"]["control"]["count"] == 2
    assert main(["analytics", "performance", str(events), "--rules", str(rules), "--goal", "Email Opened"]) == 0
    assert "goal 'Email Opened' within 7d" in capsys.readouterr().out
    assert main(["analytics", "performance", str(events), "--rules", str(rules), "--segment", "nope"]) == 2
    assert "unknown segments nope" in capsys.readouterr().err
    assert main(["analytics", "performance", str(events), "--rules", str(rules), "--confidence", "95"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
