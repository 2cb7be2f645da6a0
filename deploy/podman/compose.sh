#!/usr/bin/env bash
# Any podman-compose command on the stack compose-up.sh started, with the same compose files
# and image names:  bash deploy/podman/compose.sh ps | logs tasks | restart tasks | stop audit
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
standin_images_wanted && use_standin_images
export GATEWAY_RESOLVER="${GATEWAY_RESOLVER-}"
compose "$@"
