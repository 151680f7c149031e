# The multi-host test's image: Debian's static busybox on an empty base
# (its applets linked where they belong, /bin, /usr/bin, …, so node hosts
# have ordinary programs to allow), clawguard's static binaries, and an
# unprivileged user. Built from the host's files by the test (no registry).
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin && /bin/busybox --install -s"]
COPY clawguard tailnet-lab openclaw-double /usr/local/bin/
ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
USER 65532:65532
