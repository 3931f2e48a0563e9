"""The ``segstream`` command line: help, rules check/schema, replay."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stream.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["rules", "--help"], ["replay", "--help"], ["services", "--help"]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(argv)
        assert exc.value.code == 0
    assert "deploy" in capsys.readouterr().out


def test_rules_check_reports_file_segment_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(ROOT / "rules")]) == 0
    bad = tmp_path / "cart.yaml"
    bad.write_text("segments:\n  - name: cart\n    condition: {event: Product Added, within: 24 hours}\n")
    assert main(["rules", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "cart.yaml: segment 'cart': condition.within" in err and "24h" in err


def test_rules_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "schema"]) == 0
    schema = orjson.loads(capsys.readouterr().out)
    assert "segments" in schema["properties"]


def test_replay_prints_a_summary_and_writes_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "h.jsonl"
    events = [
        {"type": "track", "userId": "a", "event": "Order Completed", "timestamp": "2026-01-01T00:00:00Z"},
        {"type": "track", "userId": "a", "event": "Order Completed", "timestamp": "2026-01-02T00:00:00Z"},
    ]
    history.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    out = tmp_path / "changes.jsonl"
    assert main(["replay", str(history), "--rules", str(ROOT / "rules" / "behaviour.yaml"), "--out", str(out), "--until", "2026-03-01T00:00:00Z"]) == 0
    printed = capsys.readouterr().out
    assert "repeat_buyers" in printed and "1 customers, 4 changes" in printed
    changes = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(c["segment"], c["change"]) for c in changes] == [
        ("recent_buyers", "entered"),
        ("repeat_buyers", "entered"),
        ("repeat_buyers", "exited"),
        ("recent_buyers", "exited"),
    ]
