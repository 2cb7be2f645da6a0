#!/usr/bin/env bash
# Installs a container engine from Debian's packages (podman with runc, netavark, debootstrap
# for the stand-in images) and the engine settings these machines need; does nothing that is
# already in place. Run as root. podman-compose comes from PyPI (lib.sh), Debian's is too old.
set -euo pipefail

packages=()
command -v podman >/dev/null || packages+=(podman)
command -v runc >/dev/null || packages+=(runc)
command -v debootstrap >/dev/null || packages+=(debootstrap)

# netavark + aardvark-dns: container networks whose DNS resolves service names (compose);
# iptables: netavark's port publishing.
[ -x /usr/lib/podman/netavark ] || packages+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || packages+=(aardvark-dns)
command -v iptables >/dev/null || packages+=(iptables)
command -v curl >/dev/null || packages+=(curl)  # compose-up.sh waits for the gateway with it
if [ ${#packages[@]} -gt 0 ]; then
  echo "install.sh: apt-get install ${packages[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# crun (podman's default) fails every start here with `setrlimit RLIMIT_NOFILE: Operation not
# permitted`; runc with limits below the machine's own works.
conf=/etc/containers/containers.conf
if ! grep -qs '^runtime = "runc"' "$conf"; then
  mkdir -p /etc/containers
  [ -e "$conf" ] && cp "$conf" "$conf.before-taskflow"
  cat > "$conf" <<'CONF'
# Written by TaskFlow's deploy/podman/install.sh (the previous file, if any, is kept beside it
# as containers.conf.before-taskflow).
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
[engine]
runtime = "runc"
[network]
# netavark + aardvark-dns: compose service names resolve inside the stack's network.
network_backend = "netavark"
CONF
  echo "install.sh: wrote $conf" >&2
fi
