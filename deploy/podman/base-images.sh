#!/usr/bin/env bash
# Builds, from Debian's packages, local stand-ins for the images deploy/docker/Dockerfile and
# docker-compose.yml name, for machines where podman runs but no registry answers:
#
#   python   debootstrapped Debian (python3, wget), the machine's CA bundle  (for PYTHON_IMAGE)
#   uv       only /uv, the binary of PyPI's `uv` package                      (for UV_IMAGE)
#   nginx    the python stand-in plus Debian's nginx, user 101 as upstream's, and a wrapper
#            re-resolving upstream names as nginx 1.27.3+ does (nginx-reresolve.sh) (NGINX_IMAGE)
#   postgres the python stand-in plus PostgreSQL 15 and an entrypoint honouring POSTGRES_USER,
#            POSTGRES_PASSWORD and POSTGRES_DB like the official image's       (for POSTGRES_IMAGE)
#
# Names: deploy/podman/images.sh. Each image carries a label with the hash of its inputs (the
# steps that build it, suite, mirror, uv version, CA bundle, the files it copies, the base image)
# and is rebuilt only when that hash changes; otherwise the script takes a second or two. Needs root and podman (install.sh).
#
#   bash deploy/podman/base-images.sh            # build what is missing or stale
#   bash deploy/podman/base-images.sh --force    # rebuild all four
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=images.sh
. "$HERE/images.sh"

FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1
LABEL=org.taskflow.standin.inputs
CA_BUNDLE="${STANDIN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# The mirror apt already uses on this machine (never a hard-coded host).
MIRROR="${STANDIN_MIRROR:-$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } | grep -v -- '-security' | head -n 1 || true
)}"
[ -n "$MIRROR" ] || { echo "base-images: no Debian mirror in apt's sources; set STANDIN_MIRROR" >&2; exit 1; }
ARCH="$(dpkg --print-architecture)"
BASE_PACKAGES="python3,python-is-python3,wget,passwd"

log() { echo "base-images: $*" >&2; }

# A short hash of everything that changes an image: the text of the function that builds it,
# the settings and files it uses (see the callers).
inputs_hash() {
  { printf '%s\n' "$@"; sha256sum < "$CA_BUNDLE"; } | sha256sum | cut -c1-16
}

is_current() {  # image name, wanted hash
  [ "$FORCE" = 0 ] || return 1
  local have
  have="$(podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$1" 2>/dev/null || true)"
  [ "$have" = "$2" ]
}

WORK="$(mktemp -d /var/tmp/taskflow-standin.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

build_python() {
  local hash rootfs
  hash="$(inputs_hash "$(declare -f build_python)" "$STANDIN_SUITE $MIRROR $ARCH $BASE_PACKAGES")"
  if is_current "$STANDIN_PYTHON_IMAGE" "$hash"; then log "$STANDIN_PYTHON_IMAGE is current"; return; fi
  log "debootstrap $STANDIN_SUITE from $MIRROR (about 2 minutes)"
  rootfs="$WORK/rootfs"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$STANDIN_SUITE" "$rootfs" "$MIRROR" \
    > "$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
  # Registries are reached through a TLS proxy whose CA only this bundle holds: uv's own root
  # store inside a build would refuse it (`invalid peer certificate: UnknownIssuer`).
  mkdir -p "$rootfs/etc/ssl/certs"
  cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # Package scripts must not try to start daemons inside an image build.
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$WORK/rootfs.tar" .
  rm -rf "$rootfs"
  podman import -q \
    --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
    --change "ENV LANG=C.UTF-8" \
    --change "LABEL $LABEL=$hash" \
    --change 'CMD ["python3"]' \
    "$WORK/rootfs.tar" "$STANDIN_PYTHON_IMAGE" >/dev/null
  rm -f "$WORK/rootfs.tar"
  log "built $STANDIN_PYTHON_IMAGE"
}

build_uv() {
  local hash platform wheel
  hash="$(inputs_hash "$(declare -f build_uv)" "$ARCH $STANDIN_UV_VERSION")"
  if is_current "$STANDIN_UV_IMAGE" "$hash"; then log "$STANDIN_UV_IMAGE is current"; return; fi
  case "$ARCH" in
    amd64) platform=manylinux_2_17_x86_64 ;;
    arm64) platform=manylinux_2_17_aarch64 ;;
    *) log "no uv wheel for $ARCH"; exit 1 ;;
  esac
  python3 -m pip download -q --no-deps --only-binary=:all: --platform "$platform" \
    --dest "$WORK/uv" "uv==$STANDIN_UV_VERSION" > "$WORK/pip.log" 2>&1 \
    || { cat "$WORK/pip.log" >&2; exit 1; }
  wheel="$(ls "$WORK"/uv/uv-*.whl)"
  python3 - "$wheel" "$WORK/uv/uv" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith(".data/scripts/uv"))
    with wheel.open(name) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
  chmod 755 "$WORK/uv/uv"
  tar -C "$WORK/uv" -cf "$WORK/uv.tar" uv
  podman import -q --change "LABEL $LABEL=$hash" --change 'CMD ["/uv"]' \
    "$WORK/uv.tar" "$STANDIN_UV_IMAGE" >/dev/null
  log "built $STANDIN_UV_IMAGE (uv $STANDIN_UV_VERSION)"
}

# An image FROM the python stand-in, built by podman from a Containerfile on stdin.
build_derived() {  # name, image, Containerfile text
  local hash
  hash="$(inputs_hash "$(declare -f build_derived)" "$3" \
    "$(podman image inspect --format '{{.Id}}' "$STANDIN_PYTHON_IMAGE")" \
    "$(cat "$HERE/postgres-entrypoint.sh" "$HERE/nginx-reresolve.sh")")"
  if is_current "$2" "$hash"; then log "$2 is current"; return; fi
  cp "$HERE/postgres-entrypoint.sh" "$HERE/nginx-reresolve.sh" "$WORK/"
  printf '%s\n' "$3" | podman build -q --pull=never --build-arg "BASE=$STANDIN_PYTHON_IMAGE" \
    --label "$LABEL=$hash" -t "$2" -f - "$WORK" > "$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; exit 1; }
  log "built $2"
}

APT_INSTALL='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends'
APT_CLEAN='apt-get clean && rm -rf /var/lib/apt/lists/*'

previous=()
for image in "$STANDIN_PYTHON_IMAGE" "$STANDIN_UV_IMAGE" "$STANDIN_NGINX_IMAGE" "$STANDIN_POSTGRES_IMAGE"; do
  previous+=("$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)")
done
build_python
build_uv
build_derived nginx "$STANDIN_NGINX_IMAGE" "
ARG BASE
FROM \${BASE}
RUN $APT_INSTALL nginx >/dev/null && $APT_CLEAN \\
 && rm -f /etc/nginx/sites-enabled/* \\
 && groupadd --system --gid 101 nginx \\
 && useradd --system --uid 101 --gid nginx --no-create-home --shell /usr/sbin/nologin nginx
COPY nginx-reresolve.sh /usr/local/sbin/nginx
RUN chmod 755 /usr/local/sbin/nginx
STOPSIGNAL SIGQUIT
EXPOSE 8080
CMD [\"nginx\", \"-g\", \"daemon off;\"]"
build_derived postgres "$STANDIN_POSTGRES_IMAGE" "
ARG BASE
FROM \${BASE}
RUN mkdir -p /etc/postgresql-common \\
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \\
 && $APT_INSTALL -o Dpkg::Options::=--force-confold postgresql-15 >/dev/null && $APT_CLEAN
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT [\"/usr/local/bin/docker-entrypoint.sh\"]
CMD [\"postgres\"]"

# Earlier builds of these names, if a rebuild left them untagged. (Not `podman image prune`
# by label: images built FROM the stand-ins inherit the label, and their build cache with it.)
for id in "${previous[@]}"; do
  if [ -n "$id" ] && [ "$(podman image inspect --format '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ]; then
    podman rmi "$id" >/dev/null 2>&1 || true
  fi
done
