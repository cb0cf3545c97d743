# Test image (b): a named non-root user whose uid is not 1000, with a home. Build: scripts/build-images.sh
ARG BASE=debian:bookworm-slim
FROM ${BASE}
LABEL org.slotq.image=test
RUN useradd -m -u 1234 -U -s /bin/bash alice
USER alice
WORKDIR /home/alice
CMD ["bash"]
