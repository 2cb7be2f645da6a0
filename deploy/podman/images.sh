# Names of the images the podman scripts use (sourced, not run). Each can be set beforehand to
# use another image, for example the official ones where a registry answers:
#   PYTHON_IMAGE=python:3.11-slim-bookworm UV_IMAGE=ghcr.io/astral-sh/uv:0.13 \
#   NGINX_IMAGE=nginxinc/nginx-unprivileged:1.28-alpine POSTGRES_IMAGE=postgres:16-alpine \
#   bash deploy/podman/compose-up.sh
# Unset, they name the local stand-ins deploy/podman/base-images.sh builds from Debian's packages.

STANDIN_PREFIX="${STANDIN_PREFIX:-localhost/taskflow-standin}"
STANDIN_SUITE="${STANDIN_SUITE:-bookworm}"
STANDIN_UV_VERSION="${STANDIN_UV_VERSION:-0.13.9}"

STANDIN_PYTHON_IMAGE="$STANDIN_PREFIX/python:3-$STANDIN_SUITE"
STANDIN_UV_IMAGE="$STANDIN_PREFIX/uv:$STANDIN_UV_VERSION"
STANDIN_NGINX_IMAGE="$STANDIN_PREFIX/nginx:$STANDIN_SUITE"
STANDIN_POSTGRES_IMAGE="$STANDIN_PREFIX/postgres:15-$STANDIN_SUITE"

# Which images the scripts were asked to use: stand-ins unless each name is set.
standin_images_wanted() {
  [ -z "${PYTHON_IMAGE:-}" ] || [ -z "${UV_IMAGE:-}" ] || [ -z "${NGINX_IMAGE:-}" ] \
    || [ -z "${POSTGRES_IMAGE:-}" ]
}

use_standin_images() {
  export PYTHON_IMAGE="${PYTHON_IMAGE:-$STANDIN_PYTHON_IMAGE}"
  export UV_IMAGE="${UV_IMAGE:-$STANDIN_UV_IMAGE}"
  export NGINX_IMAGE="${NGINX_IMAGE:-$STANDIN_NGINX_IMAGE}"
  export POSTGRES_IMAGE="${POSTGRES_IMAGE:-$STANDIN_POSTGRES_IMAGE}"
}
