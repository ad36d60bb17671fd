#!/usr/bin/env bash
# Installs, once, what the test bed takes from Debian rather than the Go
# module proxy: BIND 9 (named, the authoritative DNS server of the traffic
# tests and the demo) and runc (the runtime of the real nodes' containerd).
# `make test` and `make demo` run it, so the README's two commands stay two.
set -euo pipefail

need=()
[ -x /usr/sbin/named ] || command -v named >/dev/null 2>&1 || need+=(bind9 dnsutils)
[ -x /usr/sbin/runc ] || command -v runc >/dev/null 2>&1 || need+=(runc)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  # Without root there is no real node either (its tests skip, saying so);
  # BIND can still run, once installed.
  echo "host-deps: missing ${need[*]}; install with: sudo apt-get install -y ${need[*]}" >&2
  case " ${need[*]} " in *" bind9 "*) exit 1 ;; esac
  exit 0
fi
echo "host-deps: installing ${need[*]} from Debian" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
