# Shared by compose-up.sh and compose-down.sh (sourced, not run).

# shellcheck source=images.sh
. "$HERE/images.sh"

PROJECT=taskflow  # docker-compose.yml's `name:`
PODMAN_COMPOSE_VERSION="${PODMAN_COMPOSE_VERSION:-1.6.0}"
# Which override files the stack was brought up with, so compose-down.sh uses the same.
STATE_DIR="${TASKFLOW_PODMAN_STATE:-$ROOT/.taskflow-podman}"
mkdir -p "$STATE_DIR"

# podman 4.3 schedules health checks with systemd timers; without systemd (these machines) it
# logs two errors per container start. The stages run the checks themselves (wait_healthy).
export DISABLE_HC_SYSTEMD=true

say() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

compose_files_set() {
  : > "$STATE_DIR/compose-files"
  [ $# -eq 0 ] || printf '%s\n' "$@" > "$STATE_DIR/compose-files"
}

compose_files() {
  echo "-f docker-compose.yml"
  [ -s "$STATE_DIR/compose-files" ] && sed 's/^/-f /' "$STATE_DIR/compose-files"
  return 0
}

# podman-compose from PyPI, pinned (Debian's 1.0.3 lacks profiles, replicas and `config`).
# uv: the one on PATH, else the repository's uvw (stdlib only: any python3 runs it, a venv's
# without pip included, as under pytest on a machine that never installed uv).
uv_run() {
  if command -v uv >/dev/null; then uv "$@"; else python3 "$ROOT/uvw" "$@"; fi
}

compose() {
  # shellcheck disable=SC2046
  uv_run tool run -q --from "podman-compose==$PODMAN_COMPOSE_VERSION" podman-compose \
    $(compose_files) "$@"
}

containers_of() {  # service -> its containers' names, one a line
  podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}'
}

dump_logs() {
  echo "--- logs of $1" >&2
  podman logs --tail 40 "$1" >&2 2>&1 || true
}

# Runs each container's own health check until it passes (podman has no timer for it here).
wait_healthy() {  # service [timeout seconds]
  local deadline=$((SECONDS + ${2:-180})) name names
  names="$(containers_of "$1")"
  [ -n "$names" ] || { echo "compose-up: no container for $1" >&2; exit 1; }
  for name in $names; do
    until podman healthcheck run "$name" >/dev/null 2>&1; do
      if [ "$(podman inspect --format '{{.State.Running}}' "$name")" != true ] \
        && [ "$(podman inspect --format '{{.State.Restarting}}' "$name")" != true ]; then
        echo "compose-up: $name stopped" >&2; dump_logs "$name"; exit 1
      fi
      [ $SECONDS -lt $deadline ] || { echo "compose-up: $name not healthy in time" >&2; dump_logs "$name"; exit 1; }
      sleep 1
    done
    say "$name healthy"
  done
}

wait_completed() {  # service: its one container exited 0
  local name code
  name="$(containers_of "$1" | head -n 1)"
  code="$(podman wait "$name")"
  if [ "$code" != 0 ]; then
    echo "compose-up: $name exited $code" >&2; dump_logs "$name"; exit 1
  fi
  say "$name done"
}
