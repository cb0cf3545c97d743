#!/usr/bin/env bash
# Make this machine ready for slotq: Docker engine, optionally Redis, Chromium (browser test), docker-compose (compose test), and the images.
# Idempotent: fast when everything is already there.
#   SLOTQ_PROVISION_REDIS=1  also make sure a Redis answers (REDIS_URL, else 127.0.0.1:6379)
#   SLOTQ_IMAGE              sandbox image tag (default slotq-sandbox:latest)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

log() { echo "[provision] $*"; }
die() { echo "[provision] ERROR: $*" >&2; exit 1; }

can_apt() { [ "$(id -u)" -eq 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" -eq 0 ]; then apt-get update -qq </dev/null; APT_UPDATED=1; fi
  apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
}

wait_for() { # wait_for SECONDS CMD...: poll CMD once a second
  local n=$1; shift
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  return 1
}

# a. Docker engine
if docker info >/dev/null 2>&1; then
  log "docker: engine answers"
elif can_apt; then
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then log "docker: installing docker.io"; apt_install docker.io; fi
  log "docker: starting dockerd (log: /var/log/dockerd.log)"
  # Fully detached: own session, no inherited stdin/stdout/stderr, so `npm test | tee` cannot hang on it.
  nohup setsid dockerd </dev/null >/var/log/dockerd.log 2>&1 &
  wait_for 60 docker info || die "dockerd did not answer within 60 s; see /var/log/dockerd.log"
  log "docker: engine up"
else
  die "no Docker engine: install Docker Engine (https://docs.docker.com/engine/install/) and start it"
fi

# a2. gVisor: Debian's runsc as a second Docker runtime (SLOTQ_RUNTIME=runsc; docs/images.md "Isolation tiers").
#     Merged into /etc/docker/daemon.json (other keys kept), then dockerd reloads its runtimes on SIGHUP.
#     --network=none: without it this runsc refuses to start containers here. Skipped if runsc cannot be had.
if ! command -v runsc >/dev/null && can_apt; then
  log "runsc: installing Debian's runsc (gVisor)"
  apt_install runsc || log "runsc: could not be installed; SLOTQ_RUNTIME=runsc will not be available"
fi
if ! command -v runsc >/dev/null; then
  log "runsc: missing (apt-get install runsc); SLOTQ_RUNTIME=runsc will not be available"
elif docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
  log "runsc: registered with dockerd"
elif [ "$(id -u)" -ne 0 ]; then
  log "runsc: not registered with dockerd; as root, add it to /etc/docker/daemon.json (see docs/images.md) and kill -HUP dockerd"
else
  log "runsc: registering in /etc/docker/daemon.json"
  mkdir -p /etc/docker
  RUNSC_PATH=$(command -v runsc) node -e '
    const fs = require("fs"); const f = "/etc/docker/daemon.json";
    const cfg = fs.existsSync(f) && fs.readFileSync(f, "utf8").trim() ? JSON.parse(fs.readFileSync(f, "utf8")) : {};
    cfg.runtimes = { ...(cfg.runtimes || {}), runsc: { path: process.env.RUNSC_PATH, runtimeArgs: ["--network=none"] } };
    fs.writeFileSync(f + ".tmp", JSON.stringify(cfg, null, 2) + "\n"); fs.renameSync(f + ".tmp", f);
  ' || die "could not update /etc/docker/daemon.json (is it valid JSON?)"
  pid=$(pidof dockerd || true)
  if [ -n "$pid" ]; then kill -HUP $pid; fi
  wait_for 30 sh -c "docker info --format '{{json .Runtimes}}' | grep -q '\"runsc\"'" || die "dockerd does not list runsc 30 s after SIGHUP; see /var/log/dockerd.log"
  log "runsc: registered"
fi

# b. Redis (only on request: the tests start their own through testcontainers)
if [ "${SLOTQ_PROVISION_REDIS:-0}" = 1 ]; then
  if [ -n "${REDIS_URL:-}" ]; then
    if command -v redis-cli >/dev/null; then
      redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 || die "redis: REDIS_URL=$REDIS_URL does not answer PING"
      log "redis: $REDIS_URL answers"
    else
      log "redis: using REDIS_URL=$REDIS_URL (no redis-cli to check it)"
    fi
  elif command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "redis: 127.0.0.1:6379 answers"
  elif can_apt; then
    if ! command -v redis-server >/dev/null; then log "redis: installing redis-server"; apt_install redis-server; fi
    log "redis: starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no </dev/null >/dev/null
    wait_for 20 redis-cli -h 127.0.0.1 -p 6379 ping || die "redis-server did not answer within 20 s"
    log "redis: up"
  else
    die "no Redis: install and start Redis on 127.0.0.1:6379 (e.g. 'docker run -d -p 6379:6379 redis:7') or set REDIS_URL"
  fi
fi

# b2. A static busybox: slotq mounts it read-only into every slot to run its own machinery, whatever the image
if [ -x /bin/busybox ] && ! LC_ALL=C readelf -l /bin/busybox 2>/dev/null | grep -q 'program interpreter'; then
  log "busybox-static: present"
elif can_apt; then
  log "busybox-static: installing Debian's busybox-static"
  apt_install busybox-static
else
  die "slotq needs a static busybox on this machine (Debian/Ubuntu: apt-get install busybox-static; or set SLOTQ_HELPER_BUSYBOX)"
fi

# b3. A C compiler with a static libc: slotq builds its call launcher (native/slotq-spawn.c) with it, once per
# machine. Without one every call still works, through the shell's fork and exec, at about twice the CPU.
has_static_cc() { command -v cc >/dev/null && case "$(cc -print-file-name=libc.a 2>/dev/null)" in /*) true ;; *) false ;; esac; }
if has_static_cc; then
  log "cc with a static libc: present"
elif can_apt; then
  log "cc with a static libc: installing Debian's gcc and libc6-dev"
  apt_install gcc libc6-dev
else
  log "cc with a static libc: missing (apt-get install gcc libc6-dev); slotq's calls will cost more CPU"
fi

# c. Headless Chromium for the board's browser test (test/integration/board.test.ts), driven by playwright-core
if [ -x /usr/bin/chromium ]; then
  log "chromium: present"
elif can_apt; then
  log "chromium: installing Debian's chromium"
  apt_install chromium
else
  log "chromium: missing (/usr/bin/chromium); the board's browser test will fail until it is installed"
fi

# d. Compose v1 (Debian's docker-compose 1.29): the compose test validates docker-compose.yml with `docker-compose config`
if command -v docker-compose >/dev/null; then
  log "docker-compose: present"
elif can_apt; then
  log "docker-compose: installing Debian's docker-compose"
  apt_install docker-compose
else
  log "docker-compose: missing; the compose test will fail until it is installed"
fi

# d2. redis-server, redis-cli and openssl: the Redis Cluster and TLS tests start their own servers
#     (test/integration/redis-cluster.test.ts, redis-tls.test.ts); Debian's redis-server is built with TLS
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v openssl >/dev/null; then
  log "redis-server, redis-cli, openssl: present"
elif can_apt; then
  log "redis-server, openssl: installing (for the Cluster and TLS tests)"
  apt_install redis-server redis-tools openssl
else
  log "redis-server/redis-cli/openssl missing; the Redis Cluster and TLS tests will fail until they are installed"
fi

# d3. Python 3 for the Python client's suite (python/tests, standard library only; npm run test:python)
if command -v python3 >/dev/null && python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  log "python3: present"
elif can_apt; then
  log "python3: installing Debian's python3"
  apt_install python3
else
  log "python3 (>= 3.9) missing: the Python client's suite (npm run test:python) will fail until it is installed"
fi

# e. Images
bash scripts/build-images.sh
log "done"
