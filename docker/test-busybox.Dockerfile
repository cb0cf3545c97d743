# Test image (c): busybox only, like Alpine's userland: no bash, no GNU coreutils, run as uid 1000 with no
# passwd entry (so no home). Built FROM scratch on the static busybox copied into the build context by
# scripts/build-images.sh.
FROM scratch
LABEL org.slotq.image=test
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/sh", "-c", "mkdir -p /etc /root /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'root:x:0:' > /etc/group && chmod 1777 /tmp"]
USER 1000
CMD ["/bin/sh"]
