#!/usr/bin/env bash
# The README's run command as a new user on a stock Debian meets it: a fresh clone, Debian's
# own /usr/bin/python3 first on the PATH, an empty HOME (no uv, no caches), nothing installed.
# Passes when /health answers; stops the stack (and its embedded PostgreSQL) by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q . "$work/clone"
mkdir "$work/home"
port=18765
start=$(date +%s)
# env -i: only what a login shell of a new user would have (the CA bundle is this machine's
# TLS proxy, as everywhere here).
(cd "$work/clone" && exec env -i HOME="$work/home" PATH="$(dirname "$python"):/usr/bin:/bin" \
    LANG=C.UTF-8 ${SSL_CERT_FILE:+SSL_CERT_FILE="$SSL_CERT_FILE"} \
    "$python" uvw run taskflow dev --port "$port") >"$work/dev.log" 2>&1 &
pid=$!
ok=""
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
elapsed=$(( $(date +%s) - start ))
kill -INT "$pid" 2>/dev/null || true
for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
kill -KILL "$pid" 2>/dev/null || true
if [ -z "$ok" ]; then
  echo "fresh-machine run: /health never answered; its output:" >&2
  tail -50 "$work/dev.log" >&2
  exit 1
fi
echo "fresh-machine run: 'python3 uvw run taskflow dev' with $python answered /health after ${elapsed}s"
if grep -qi "externally-managed\|WARNING: pip\|Running pip" "$work/dev.log"; then
  echo "fresh-machine run: pip ran or warned:" >&2
  grep -i "externally-managed\|WARNING: pip\|Running pip" "$work/dev.log" >&2
  exit 1
fi
