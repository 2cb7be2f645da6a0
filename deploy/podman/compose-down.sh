#!/usr/bin/env bash
# Stops and removes what compose-up.sh started: every container, network and volume of the
# `taskflow` compose project (the images stay, for the next compose-up.sh), then checks that
# none is left and exits 1 if one is.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

command -v podman >/dev/null || { rm -rf "$STATE_DIR"; exit 0; }
label="label=io.podman.compose.project=$PROJECT"

compose down -v -t 10 >/dev/null 2>&1 || true
# Whatever `down` missed (replicas of an override given to compose-up, one-off containers).
podman ps -aq --filter "$label" | xargs -r podman rm -f -t 10 >/dev/null
podman volume ls -q --filter "$label" | xargs -r podman volume rm -f >/dev/null
podman network ls -q --filter "$label" | xargs -r podman network rm -f >/dev/null

# By label, and by the project's name prefix in case a tool did not label something.
left="$(
  podman ps -a --format '{{.Names}}' --filter "$label"
  podman ps -a --format '{{.Names}}' | grep "^${PROJECT}_" || true
  podman volume ls --format '{{.Name}}' | grep "^${PROJECT}_" || true
  podman network ls --format '{{.Name}}' | grep "^${PROJECT}_" || true
)"
if [ -n "$left" ]; then
  echo "compose-down: still there: $(echo "$left" | tr '\n' ' ')" >&2
  exit 1
fi
rm -rf "$STATE_DIR"
say "compose-down: no container, network or volume of $PROJECT left"
