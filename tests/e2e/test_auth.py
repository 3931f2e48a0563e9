"""Access control with real processes: keys managed by the CLI apply to running collector and API, secrets stay out of logs.

Real Tansu broker and real redis-server; nothing mocked.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import redis
from pydantic import SecretStr

from stream.config import Settings
from tests.e2e.engine import Engine
from tests.e2e.harness import (
    E2E_API_KEY,
    ROOT,
    Proc,
    api_headers,
    free_port,
    http_json,
    settings_env,
    tls_files,
    wait_http,
    wait_until,
)

EVENT = {"userId": "ann", "event": "Order Completed", "properties": {"revenue": 5}}


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", *args], env=settings_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_added_and_revoked_with_the_cli_apply_to_running_processes(settings: Settings) -> None:
    eng = Engine(settings).start("collector", "api")
    track = f"{eng.collector_url}/v1/track"
    stats = f"{eng.api_url}/v1/stats"
    try:
        # No write key yet: the collector is open (development).
        assert http_json("POST", track, EVENT, basic("anything"))[0] == 200

        web_key = cli(settings, "keys", "add-write", "web").stdout.strip()
        wait_until(lambda: http_json("POST", track, EVENT, basic("anything"))[0] == 401, 5, "the collector closed by a write key")
        assert http_json("POST", track, EVENT, basic(web_key))[0] == 200

        dash_key = cli(settings, "keys", "add-api", "dash", "--scope", "read").stdout.strip()
        wait_until(lambda: http_json("GET", stats, headers=bearer(dash_key))[0] == 200, 5, "a new API key accepted")
        status, body = http_json("DELETE", f"{eng.api_url}/v1/customers/ann", headers=bearer(dash_key))
        assert status == 403 and "needs scope admin" in body["error"]

        listing = cli(settings, "keys", "list").stdout
        assert web_key not in listing and dash_key not in listing and web_key[-4:] in listing

        cli(settings, "keys", "revoke", "web", "dash")
        revoked_at = time.monotonic()
        wait_until(
            lambda: http_json("POST", track, EVENT, basic(web_key))[0] == 401 and http_json("GET", stats, headers=bearer(dash_key))[0] == 401,
            5,
            "revoked keys refused",
            interval=0.05,
        )
        assert time.monotonic() - revoked_at < 2.0
        status, body = http_json("POST", track, EVENT, basic(web_key))
        assert body["code"] == "revoked_write_key"

        status, counters = http_json("GET", f"{eng.collector_url}/stats", headers=api_headers(settings))
        assert status == 200 and set(counters["sources"]) == {"open", "web"}
        assert counters["rejected_requests"]["unknown_write_key"] >= 1 and counters["rejected_requests"]["revoked_write_key"] >= 1
    finally:
        eng.stop()


def test_secrets_never_reach_the_logs(base_settings: Settings, settings: Settings) -> None:
    """Collector, worker and API with a Redis password (an ACL user), API and write keys; and a collector with a SASL password."""
    password = "redis-" + secrets.token_hex(12)
    ops_key, write_key, sasl_password = "ops-" + secrets.token_hex(12), "web-" + secrets.token_hex(12), "sasl-" + secrets.token_hex(12)
    user = f"segstream-{settings.namespace}"
    admin = redis.Redis.from_url(base_settings.redis_url)
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"], commands=["+@all"])
    url = urlsplit(settings.redis_url)
    secured = settings.model_copy(
        update={
            "redis_url": urlunsplit((url.scheme, f"{user}:{password}@{url.hostname}:{url.port}", url.path, url.query, "")),
            "api_keys": SecretStr(f"e2e:admin:{E2E_API_KEY},ops:admin:{ops_key}"),
            "write_keys": SecretStr(f"web:{write_key}"),
            "log_level": "DEBUG",
        }
    )
    sasl = secured.model_copy(
        update={
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_username": "app",
            "kafka_sasl_password": SecretStr(sasl_password),
            "namespace": settings.namespace + "-sasl",
            "collector_port": free_port(),
        }
    )
    eng = Engine(secured)
    procs: list[Proc] = []
    try:
        eng.start()
        assert http_json("POST", f"{eng.collector_url}/v1/track", EVENT, basic(write_key))[0] == 200
        assert http_json("POST", f"{eng.collector_url}/v1/track", EVENT, basic("wrong-key"))[0] == 401
        eng.wait_events_processed(1)
        status, profile = http_json("GET", f"{eng.api_url}/v1/customers/ann", headers=bearer(ops_key))
        assert status == 200 and profile["revenue"] == 5  # Redis with user and password works end to end
        assert http_json("GET", f"{eng.api_url}/v1/stats", headers=bearer("wrong-key"))[0] == 401
        collector = Proc("collector-sasl", sasl, ["collector"]).start()
        procs.append(collector)
        wait_http(f"http://127.0.0.1:{sasl.collector_port}/health")
        status, _ = http_json("POST", f"http://127.0.0.1:{sasl.collector_port}/v1/track", EVENT, basic(write_key))
        assert status in (200, 503)  # whether the broker speaks SASL or not, the password must not be logged
    finally:
        for proc in procs:
            proc.stop()
        eng.stop()
        admin.acl_deluser(user)
    logs = {p.name: p.log_path.read_text(errors="replace") for p in [*eng.procs.values(), *procs]}
    for name, text in logs.items():
        for secret in (password, ops_key, write_key, sasl_password):
            assert secret not in text, f"a secret is in the {name} log"
    assert f"{user}:***@" in logs["worker"]  # the worker logs its Redis URL, masked


def test_redis_over_tls_with_a_password_and_a_client_certificate(settings: Settings, tmp_path: Path) -> None:
    """A private redis-server that only speaks TLS, wants a password and a client certificate: REDIS_URL carries it all."""
    tls = tls_files(tmp_path)
    port, password = free_port(), "tls-" + secrets.token_hex(8)
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--tls-cert-file", tls["server_cert"],
         "--tls-key-file", tls["server_key"], "--tls-ca-cert-file", tls["ca"], "--tls-auth-clients", "yes",
         "--requirepass", password, "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = urlencode({"ssl_ca_certs": tls["ca"], "ssl_certfile": tls["client_cert"], "ssl_keyfile": tls["client_key"]})
    secured = settings.model_copy(update={"redis_url": f"rediss://:{password}@127.0.0.1:{port}/0?{query}"})
    api = Proc("api-tls", secured, ["api"])
    try:
        wait_until(lambda: redis.Redis.from_url(secured.redis_url).ping(), 10, "the TLS redis-server")
        key = cli(secured, "keys", "add-api", "tls-reader").stdout.strip()
        api.start()
        wait_http(f"http://127.0.0.1:{secured.api_port}/health")
        status, body = http_json("GET", f"http://127.0.0.1:{secured.api_port}/v1/segments", headers=bearer(key))
        assert status == 200 and body["segments"], body
        plain = settings.model_copy(update={"redis_url": f"rediss://:{password}@127.0.0.1:{port}/0"})  # no CA: refused
        listed = subprocess.run(
            [sys.executable, "-m", "stream.cli", "keys", "list"], env=settings_env(plain), cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert listed.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in listed.stderr and password not in listed.stderr
    finally:
        api.stop()
        server.terminate()
        server.wait(10)
    assert password not in api.log_path.read_text()
