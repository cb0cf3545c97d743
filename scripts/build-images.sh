#!/usr/bin/env bash
# Build slotq's images when they are missing (never rebuilds an existing one).
#   SLOTQ_IMAGE       sandbox image tag (default slotq-sandbox:latest)
#   SLOTQ_BASE_IMAGE  base image for both builds (default: debian:bookworm-slim if it can be had,
#                     else a local Debian base slotq-base:bookworm made with debootstrap)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

SANDBOX_IMAGE=${SLOTQ_IMAGE:-slotq-sandbox:latest}
REDIS_IMAGE=slotq-redis:test
LOCAL_BASE=slotq-base:bookworm

log() { echo "[images] $*"; }
die() { echo "[images] ERROR: $*" >&2; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# Set BASE to the image to build on (once per run), creating the local debootstrap base if needed.
BASE=
pick_base() {
  [ -n "$BASE" ] && return
  if [ -n "${SLOTQ_BASE_IMAGE:-}" ]; then BASE=$SLOTQ_BASE_IMAGE; return; fi
  if have_image debian:bookworm-slim; then BASE=debian:bookworm-slim; return; fi
  if have_image "$LOCAL_BASE"; then BASE=$LOCAL_BASE; return; fi
  # Many machines (CI included) reach no registry: fail fast rather than hang.
  if timeout 25 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then BASE=debian:bookworm-slim; return; fi
  log "no registry: building $LOCAL_BASE with debootstrap (log: /tmp/slotq-debootstrap.log)"
  if ! command -v debootstrap >/dev/null; then
    { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; } ||
      die "debootstrap is missing: install it, or set SLOTQ_BASE_IMAGE to a Debian/Ubuntu image you have"
    { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; } </dev/null
  fi
  local rootfs t0=$SECONDS ok=1
  rootfs=$(mktemp -d -p /var/tmp slotq-rootfs.XXXXXX)
  debootstrap --variant=minbase --include=ca-certificates,procps,python3,git bookworm "$rootfs" \
    </dev/null >/tmp/slotq-debootstrap.log 2>&1 &&
    tar -C "$rootfs" -c . | docker import - "$LOCAL_BASE" >/dev/null || ok=0
  rm -rf "$rootfs"
  [ "$ok" = 1 ] || die "could not build $LOCAL_BASE; see /tmp/slotq-debootstrap.log"
  log "$LOCAL_BASE: built in $((SECONDS - t0)) s"
  BASE=$LOCAL_BASE
}

build() { # build TAG DOCKERFILE
  local tag=$1 file=$2 t0 out
  if have_image "$tag"; then log "$tag: present"; return; fi
  pick_base
  log "$tag: building from $file on $BASE"
  t0=$SECONDS
  # Classic builder: BuildKit may try to reach a registry even for local images. Output only on failure.
  out=$(DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$BASE" -t "$tag" -f "$file" docker/ 2>&1) || {
    echo "$out" >&2
    die "building $tag failed"
  }
  log "$tag: built in $((SECONDS - t0)) s"
}

build "$SANDBOX_IMAGE" docker/sandbox.Dockerfile
build "$REDIS_IMAGE" docker/redis.Dockerfile
