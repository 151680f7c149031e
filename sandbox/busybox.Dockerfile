# The sandbox test image: Debian's busybox-static on an empty base, its
# applets installed as symlinks, running as an unprivileged user. Built from
# the host's /bin/busybox (no registry needed) by sandbox.BusyboxImage, or by
# hand: cp /bin/busybox . && docker build -t clawguard-sandbox-test .
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
USER 65532:65532
CMD ["sleep", "infinity"]
