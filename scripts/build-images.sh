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

# The recipe hash of a Dockerfile: an image of ours built from an older recipe is rebuilt.
recipe_of() { sha256sum "$1" | cut -c1-16; }
label_of() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

build() { # build TAG DOCKERFILE [CONTEXT]
  local tag=$1 file=$2 ctx=${3:-docker/} recipe t0 out
  recipe=$(recipe_of "$file")
  if have_image "$tag"; then
    local had
    had=$(label_of "$tag" org.slotq.recipe)
    if [ "$had" = "$recipe" ]; then log "$tag: present"; return; fi
    # Not built by this script (a user's own image under that name): keep it.
    if [ -z "$had" ] && [ -z "$(label_of "$tag" org.slotq.image)" ]; then log "$tag: present (not built here; kept)"; return; fi
    log "$tag: its recipe changed ($file); rebuilding"
  fi
  pick_base
  log "$tag: building from $file on $BASE"
  t0=$SECONDS
  # Classic builder: BuildKit may try to reach a registry even for local images. Output only on failure.
  out=$(DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$BASE" --label "org.slotq.recipe=$recipe" -t "$tag" -f "$file" "$ctx" 2>&1) || {
    echo "$out" >&2
    die "building $tag failed"
  }
  log "$tag: built in $((SECONDS - t0)) s"
}

build "$SANDBOX_IMAGE" docker/sandbox.Dockerfile
build "$REDIS_IMAGE" docker/redis.Dockerfile

# Images users bring, for the test suite's image matrix (test/integration/images.test.ts): root by default,
# a named user with uid 1234, and busybox only (FROM scratch, on the machine's static busybox).
if [ "${SLOTQ_TEST_IMAGES:-1}" = 1 ]; then
  build slotq-test-root:latest docker/test-root.Dockerfile
  build slotq-test-named:latest docker/test-named.Dockerfile
  bbctx=$(mktemp -d)
  cp /bin/busybox "$bbctx/busybox" || die "no /bin/busybox: install busybox-static (scripts/provision.sh does)"
  build slotq-test-busybox:latest docker/test-busybox.Dockerfile "$bbctx"
  rm -rf "$bbctx"
fi
