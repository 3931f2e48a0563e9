#!/usr/bin/env bash
# Make sure the system packages segstream needs are present: Python's venv module,
# redis-server, redis-tools (redis-benchmark), and chromium and npm (the browser SDK tests).
# Installs the missing ones with apt-get when running as root, otherwise says which
# command to run. Used by `make install`.
set -euo pipefail

PYTHON="${1:-python3}"
missing=()

if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  # Debian splits venv/ensurepip out of python3; the versioned package matches the interpreter.
  version="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  missing+=("python${version}-venv")
fi
if ! command -v redis-server >/dev/null 2>&1 && [[ ! -x /usr/bin/redis-server ]]; then
  missing+=(redis-server)
fi
# redis-benchmark, for the Redis ceiling of `segstream bench` (redis-server usually pulls it in).
if ! command -v redis-benchmark >/dev/null 2>&1 && [[ ! -x /usr/bin/redis-benchmark ]]; then
  missing+=(redis-tools)
fi
# Debian's chromium, which Playwright drives in tests/e2e/test_browser_sdk.py (never `playwright install`).
if [[ ! -x /usr/bin/chromium ]]; then
  missing+=(chromium)
fi
# npm (it pulls in nodejs), which builds the browser SDK bundle of web/sdk/ for that test.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing system packages: ${missing[*]}" >&2
  echo "       install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  echo "       (other systems: install Python's venv module, redis-server, chromium and npm with your package manager)" >&2
  exit 1
fi

echo "installing missing system packages: ${missing[*]} (apt-get update && apt-get install -y ${missing[*]})"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
