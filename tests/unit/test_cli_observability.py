"""``segstream tail`` and ``status`` formatting, replay progress, and ``--help`` of every subcommand — no services."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from stream.cli import _replay_progress, build_parser
from stream.observability.status import format_status, healthy
from stream.observability.tail import change_line, of_customer

CHANGE = {"at": "2026-01-01T00:00:00.000Z", "customer_id": "bob", "change": "exited", "segment": "vip", "reason": "r", "group": "control"}


def test_change_line_and_customer_filter() -> None:
    assert change_line(CHANGE) == "2026-01-01T00:00:00.000Z  bob  exited  vip [control]  r"
    assert list(of_customer([CHANGE, {**CHANGE, "customer_id": "al"}], "al")) == [{**CHANGE, "customer_id": "al"}]
    assert len(list(of_customer([CHANGE, CHANGE], None))) == 2


def test_status_text_summarises_everything() -> None:
    status = {
        "namespace": "ns",
        "kafka": {"bootstrap": "k:9092", "topics": {"ns.events": 4}, "committed": {"0": 12, "1": None}},
        "redis": {
            "url": "redis://h:1/0",
            "workers": [{"id": "h:1", "partitions": [0, 1], "seen_ms_ago": 300}],
            "rules": {"version": "abc123", "deployed_at": "2026-01-01T00:00:00.000Z"},
            "segments": {"vip": 3, "buyers": 10},
            "models": {"version": 7, "at": "2026-01-01T00:00:00.000Z", "quality": {"churn": {"examples": 9, "roc_auc": 0.8612}}},
        },
        "lag": [{"worker": "http://w:8090", "lag": {"0": 0, "1": 5}}, {"worker": "http://x:8090", "error": "no answer"}],
    }
    text = format_status(status)
    for expected in (
        "ns.events (4)",
        "p0=12, p1=-",
        "workers 1 live",
        "h:1: partitions [0, 1]",
        "rules   abc123",
        "vip",
        "churn: examples 9, roc_auc 0.861",
        "http://w:8090: p0=0, p1=5",
        "http://x:8090: no answer",
    ):
        assert expected in text, expected
    assert healthy(status)
    assert not healthy({**status, "redis": {"url": "u", "error": "down"}})
    assert "redis   u: down" in format_status({**status, "redis": {"url": "u", "error": "down"}})


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((name, sub))
                found += [(f"{name} {n}", p) for n, p in _subcommands(sub)]
    return found


def test_every_subcommand_explains_itself() -> None:
    commands = _subcommands(build_parser())
    assert {"tail", "status", "rules check", "keys revoke", "replay"} <= {name for name, _ in commands}
    for name, parser in commands:
        assert parser.description and len(parser.description) > 20, name
        for action in parser._actions:
            if action.dest not in ("help",) and not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{name}: {action.dest}"


def test_replay_progress_shows_a_bar_and_percentage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = tmp_path / "h.jsonl"
    history.write_text("{}\n" * 200)
    err = io.StringIO()
    err.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stderr", err)
    progress = _replay_progress(str(history))
    progress(50)
    assert "[#######.......................]  25.0%  50 of ~200 events replayed" in err.getvalue()
    _replay_progress(None)(7)
    assert "7 events replayed" in err.getvalue()


def test_status_reads_lag_only_from_a_worker_of_its_own_namespace() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from stream.observability.status import _scrape
    from stream.observability.worker import WorkerMetrics

    metrics = WorkerMetrics()
    metrics.info.set(1, "shop")
    metrics.consumer([0, 1], {0: 10, 1: 5}, {0: 7, 1: 5})
    body = metrics.registry.render().encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        assert _scrape(url, "shop") == {"worker": url, "lag": {"0": 3, "1": 0}}
        other = _scrape(url, "staging")
        assert "lag" not in other and "serves namespace shop, not staging" in other["error"]
    finally:
        server.shutdown()
