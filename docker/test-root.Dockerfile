# Test image (a): plain Debian, root by default (no USER line), python3, git and tmux, like the original's
# sandbox recipe (python:3.11-slim + tools). slotq must work on it unchanged. Build: scripts/build-images.sh
ARG BASE=debian:bookworm-slim
FROM ${BASE}
LABEL org.slotq.image=test
RUN set -eu; missing=""; \
    for p in python3:python3 git:git tmux:tmux; do command -v "${p%%:*}" >/dev/null 2>&1 || missing="$missing ${p#*:}"; done; \
    if [ -n "$missing" ]; then apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; fi; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/* /var/tmp/*
CMD ["bash"]
