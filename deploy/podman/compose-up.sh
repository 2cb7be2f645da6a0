#!/usr/bin/env bash
# Brings up docker-compose.yml on podman, on a machine with no Docker engine and no registry,
# and waits until the gateway answers on 127.0.0.1:${TASKFLOW_PORT:-8080}; prints a token.
#
#   bash deploy/podman/compose-up.sh                                   # the stack
#   bash deploy/podman/compose-up.sh deploy/podman/replicas.yml        # + override files
#   bash deploy/podman/compose-down.sh                                 # remove it all
#
# Installs podman if needed (as root, install.sh), builds the stand-in base images unless
# PYTHON_IMAGE, UV_IMAGE, NGINX_IMAGE and POSTGRES_IMAGE name others (base-images.sh), builds the
# TaskFlow images from deploy/docker/Dockerfile, then starts the services in the order the
# compose file's depends_on conditions give. It starts them stage by stage itself because
# podman 4.3 runs health checks from systemd timers, which these machines lack, and
# podman-compose does not wait for `service_healthy` on it: the stages run each container's
# health check (`podman healthcheck run`) until it passes, so every HEALTHCHECK really runs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

for file in "$@"; do
  [ -f "$file" ] || { echo "compose-up: no such compose file: $file" >&2; exit 2; }
done
compose_files_set "$@"

if ! command -v podman >/dev/null || ! grep -qs '^runtime = "runc"' /etc/containers/containers.conf; then
  [ "$(id -u)" = 0 ] || { echo "compose-up: podman is missing; run deploy/podman/install.sh as root" >&2; exit 1; }
  bash "$HERE/install.sh"
fi
if standin_images_wanted; then
  bash "$HERE/base-images.sh"
  use_standin_images
fi
# Debian's nginx re-resolves upstream names through the stand-in's wrapper, not a resolver.
export GATEWAY_RESOLVER="${GATEWAY_RESOLVER-}"
# podman's default OCI image format drops HEALTHCHECK; the Docker format keeps it.
export BUILDAH_FORMAT=docker

say "building the TaskFlow images (deploy/docker/Dockerfile)"
started=$SECONDS
# One build at a time: the images share their first stages, which a build then finds cached.
compose --parallel 1 build >"$STATE_DIR/build.log" 2>&1 || { tail -n 40 "$STATE_DIR/build.log" >&2; exit 1; }
say "images built in $((SECONDS - started)) s"

say "postgres"
compose up -d --no-deps postgres >/dev/null
wait_healthy postgres

say "migrations"
compose up -d --no-deps migrate >/dev/null
wait_completed migrate

# The dev issuer's key, made once before any verifier starts: replicas starting together on an
# empty volume would each make one (their temporary files are named by PID, 1 in every
# container).
compose run --rm --no-deps --entrypoint taskflow dev-token token --sub compose-up >/dev/null

services=(auth-verifier tasks audit)
say "${services[*]}"
compose up -d --no-deps "${services[@]}" >/dev/null
for service in "${services[@]}"; do wait_healthy "$service"; done

say "gateway"
compose up -d --no-deps gateway >/dev/null
wait_healthy gateway
port="${TASKFLOW_PORT:-8080}"
deadline=$((SECONDS + 60))
until curl -fsS -o /dev/null "http://127.0.0.1:$port/health"; do
  [ $SECONDS -lt $deadline ] || { echo "compose-up: nothing answers on 127.0.0.1:$port" >&2; exit 1; }
  sleep 1
done

compose up -d --no-deps dev-token >/dev/null
wait_completed dev-token
# The dev-token container's message, with this machine's commands.
podman logs "$(containers_of dev-token | head -n 1)" 2>&1 \
  | sed -e "s#http://localhost:#http://127.0.0.1:#" -e '/^More: /d'
echo "More tokens: podman run --rm -v ${PROJECT}_devissuer:/data taskflow-tools:dev token --sub alice"
echo "Stop and remove everything: bash deploy/podman/compose-down.sh"
