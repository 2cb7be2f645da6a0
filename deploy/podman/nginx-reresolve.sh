#!/bin/sh
# `nginx` in the stand-in nginx image (deploy/podman/base-images.sh), ahead of Debian's on PATH.
#
# Debian's nginx (1.22) cannot re-resolve the host names of upstream servers (the `resolve`
# parameter needs nginx 1.27.3+, which the official image has): it resolves them once, at
# start. Under compose a re-created or restarted container comes back at a new address, and a
# stopped replica's address stays in the list. So when nginx runs in the foreground, this
# watches the upstream names of its configuration and reloads nginx (which resolves them again)
# whenever the addresses behind them change. Every other use goes straight to nginx.
set -eu

NGINX=/usr/sbin/nginx
INTERVAL="${NGINX_RERESOLVE_INTERVAL:-1}"

case " $* " in
  *" daemon off; "*) ;;
  *) exec "$NGINX" "$@" ;;
esac

config=/etc/nginx/nginx.conf
prev=""
for arg in "$@"; do
  [ "$prev" = "-c" ] && config="$arg"
  prev="$arg"
done

# Host names (not addresses) of `server` lines inside upstream blocks.
hosts="$(awk '/^[ \t]*upstream[ \t]/ {inside=1} inside && /^[ \t]*server[ \t]/ {
            split($2, a, ":"); if (a[1] !~ /^[0-9.]+$/) print a[1] }
          inside && /^[ \t]*}/ {inside=0}' "$config" | sort -u)"

addresses() {
  for host in $hosts; do
    printf '%s=%s\n' "$host" "$(getent ahostsv4 "$host" | awk '{print $1}' | sort -u | tr '\n' ' ')"
  done
}

"$NGINX" "$@" &
pid=$!
# Not `kill -0`: that also succeeds for a zombie nginx this shell has not reaped yet.
alive() { [ -r "/proc/$pid/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"; }
trap 'kill -QUIT "$pid" 2>/dev/null' QUIT
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
trap 'kill -HUP "$pid" 2>/dev/null' HUP

if [ -n "$hosts" ]; then
  seen="$(addresses)"
  while alive; do
    sleep "$INTERVAL" &
    wait $! || true
    now="$(addresses)"
    if [ "$now" != "$seen" ]; then
      echo "nginx-reresolve: upstream addresses changed, reloading: $(echo "$now" | tr '\n' ' ')" >&2
      kill -HUP "$pid" 2>/dev/null || true
      seen="$now"
    fi
  done
fi
# `wait` also returns when a trapped signal arrives: wait until nginx itself has finished.
while alive; do wait "$pid" || true; done
status=0
wait "$pid" || status=$?
exit "$status"
