// LD_PRELOAD shim for the torn-write test: the journal record write after the first
// STELE_TEAR_AFTER ones writes only half its bytes, then the process is killed (SIGKILL) before
// the write returns, as a power cut or a kill inside the system call would leave it.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int writes;

static int is_journal(int fd) {
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 8) return 0;
    path[n] = 0;
    return strcmp(path + n - 8, "/journal") == 0;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    const char *after = getenv("STELE_TEAR_AFTER");
    // Records with entries only: a writer's mark and the journal's clearing are smaller.
    if (after && count > 64 && is_journal(fd) && ++writes > atoi(after)) {
        real(fd, buf, count / 2, offset);
        kill(getpid(), SIGKILL);
    }
    return real(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    return pwrite64(fd, buf, count, offset);
}
