#!/usr/bin/env bash
# Makes `make test-deploy` self-sufficient on a bare Debian machine (root, no systemd, no image
# registry): installs Debian's docker.io, docker-compose and debootstrap, starts dockerd when none
# answers, and makes the base image $BASE_IMAGE from `debootstrap --variant=minbase bookworm`.
# Exits 0 when the engine and the base image are ready; otherwise prints why and exits non-zero.
# A dockerd started here is left running (log: $DOCKERD_LOG) so the next run finds its cache.
set -euo pipefail

DOCKER=/usr/bin/docker  # Debian's client, not another one that may be first on PATH
BASE_IMAGE=${CYTOATLAS_BASE_IMAGE:-cytoatlas-base:bookworm}
BASE_CACHE=${CYTOATLAS_BASE_CACHE:-/var/cache/cytoatlas/bookworm-minbase.tar}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/cytoatlas-dockerd.log}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=(docker.io docker-compose debootstrap)

say() { echo "deploy/engine.sh: $*" >&2; }

if ! [ -x /usr/bin/docker ] || ! [ -x /usr/bin/docker-compose ] || ! [ -x /usr/sbin/debootstrap ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "need ${PACKAGES[*]} (Debian packages); run as root on Debian or install them first"
    exit 3
  fi
  say "installing ${PACKAGES[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -q "${PACKAGES[@]}" >/dev/null
fi

engine_answers() { timeout 10 "$DOCKER" info >/dev/null 2>&1; }

start_dockerd() {  # $1 = storage driver, then extra dockerd flags; returns 0 once the engine answers
  say "starting dockerd (storage driver $1${2:+, $*}), log $DOCKERD_LOG"
  mkdir -p "$(dirname "$DOCKERD_LOG")"
  nohup /usr/sbin/dockerd --storage-driver="$1" "${@:2}" >>"$DOCKERD_LOG" 2>&1 &
  local pid=$!
  for _ in $(seq 60); do
    if engine_answers; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 1
}

if ! engine_answers; then
  if [ "$(id -u)" != 0 ] || ! [ -x /usr/sbin/dockerd ]; then
    say "no Docker engine answers and dockerd cannot be started here (need root)"
    exit 4
  fi
  # overlay2 is the fast driver; vfs (full copies) works where overlayfs mounts are not allowed;
  # nested or unprivileged environments often cannot set up iptables rules, hence the last try.
  if ! start_dockerd overlay2 && ! start_dockerd vfs && ! start_dockerd vfs --iptables=false; then
    say "dockerd did not start with overlay2, vfs or vfs --iptables=false; last lines of $DOCKERD_LOG:"
    tail -n 15 "$DOCKERD_LOG" >&2
    exit 5
  fi
fi
say "engine ready: $("$DOCKER" info --format '{{.ServerVersion}}, storage driver {{.Driver}}')"

if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if ! [ -s "$BASE_CACHE" ]; then
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs" "$BASE_CACHE.partial"' EXIT  # also when debootstrap or tar fails
    say "debootstrap --variant=minbase bookworm (python3, venv, pip) into $rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$rootfs" "$MIRROR" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    mkdir -p "$(dirname "$BASE_CACHE")"
    tar -C "$rootfs" -cf "$BASE_CACHE.partial" .
    mv "$BASE_CACHE.partial" "$BASE_CACHE"
    rm -rf "$rootfs"
    trap - EXIT
  fi
  say "importing $BASE_CACHE as $BASE_IMAGE"
  "$DOCKER" import "$BASE_CACHE" "$BASE_IMAGE" >/dev/null
fi
say "base image ready: $BASE_IMAGE"
