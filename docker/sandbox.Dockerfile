# slotq sandbox: the image each slot container runs. Build: scripts/build-images.sh
ARG BASE=debian:bookworm-slim
FROM ${BASE}
LABEL org.slotq.image=sandbox

# Install only what the base lacks (the debootstrap base already has all of it, so apt is skipped).
RUN set -eu; missing=""; \
    for p in bash:bash ls:coreutils python3:python3 git:git ps:procps setsid:util-linux tar:tar gzip:gzip tmux:tmux; do \
      command -v "${p%%:*}" >/dev/null 2>&1 || missing="$missing ${p#*:}"; \
    done; \
    [ -f /etc/ssl/certs/ca-certificates.crt ] || missing="$missing ca-certificates"; \
    if [ -n "$missing" ]; then \
      echo "installing:$missing"; apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; \
    fi; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/* /var/tmp/*

# Non-root user agent (uid 1000); bases such as ubuntu:24.04 already use uid 1000, so free it.
RUN set -eu; \
    old=$(getent passwd 1000 | cut -d: -f1 || true); \
    if [ -n "$old" ] && [ "$old" != agent ]; then userdel -r "$old" 2>/dev/null || userdel "$old"; fi; \
    id agent >/dev/null 2>&1 || useradd -m -u 1000 -U -s /bin/bash agent; \
    mkdir -p /workspace && chown agent:agent /workspace && chmod 755 /workspace; \
    rm -rf /tmp/* /var/tmp/*

WORKDIR /workspace
USER agent
CMD ["sleep", "infinity"]
