"""`segstream run` (what `make run` starts): all processes, an event in, a membership out, a rule edit live."""

from __future__ import annotations

import base64
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from stream.config import Settings
from tests.e2e.conftest import make_settings
from tests.e2e.harness import ARTIFACTS, ROOT, api_headers, http_json, settings_env, wait_http, wait_until


def test_segstream_run_serves_events_to_memberships_and_follows_rule_edits(
    base_settings: Settings, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    settings = make_settings(base_settings, rules_dir=rules, state_dir=tmp_path / "state")
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"{settings.namespace}-run.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "run", "--no-services"],
        env=settings_env(settings),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    collector = f"http://127.0.0.1:{settings.collector_port}"
    api = f"http://127.0.0.1:{settings.api_port}"
    auth = {"Authorization": "Basic " + base64.b64encode(b"key:").decode()}
    try:
        wait_http(f"{collector}/health", 60)
        wait_http(f"{api}/health", 60)

        def entered() -> bool:
            status, _ = http_json("POST", f"{collector}/v1/track", {"userId": "zoe", "event": "Order Completed"}, auth)
            assert status == 200
            status, body = http_json("GET", f"{api}/v1/customers/zoe/segments", headers=api_headers(settings))
            return status == 200 and "recent_buyers" in [s["segment"] for s in body["segments"]]

        wait_until(entered, 90, "zoe in recent_buyers through `segstream run`", interval=2)

        # Edit a rule file: the running engine deploys it and backfills the new segment.
        (rules / "extra.yaml").write_text(
            "segments:\n  - name: any_order\n    condition: {event: Order Completed, within: 1h}\n"
        )

        def backfilled() -> bool:
            status, body = http_json("GET", f"{api}/v1/customers/zoe/segments", headers=api_headers(settings))
            return "any_order" in [s["segment"] for s in body["segments"]]

        wait_until(backfilled, 60, "the edited rules deployed and backfilled")

        # The admin key `segstream run` keeps for this machine works, and was never printed.
        local_key = (tmp_path / "state" / f"{settings.namespace}.api-key").read_text().strip()
        status, body = http_json("GET", f"{api}/v1/stats", headers={"Authorization": f"Bearer {local_key}"})
        assert status == 200, body
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    output = (ARTIFACTS / f"{settings.namespace}-run.log").read_text()
    assert code == 0, output[-3000:]
    prefixes = {line.split("|")[0].strip() for line in output.splitlines() if "|" in line}
    assert {"collector", "worker", "api", "rules"} <= prefixes  # every child ran, its output relayed
    assert "deployed" in output and "stopped" in output
    assert f"export SEGSTREAM_API_KEY=$(cat {tmp_path / 'state' / settings.namespace}.api-key)" in output
    assert local_key not in output
