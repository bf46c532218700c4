#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "CSteleLinux.h"

int stele_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
        return -1;
    }
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

int stele_unix_connect(const char *path) {
    struct sockaddr_un address;
    memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(address.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Termination signals: the handler only writes the signal's number to a pipe (write is
   async-signal-safe), and a thread reads it. A real handler rather than SIG_IGN plus a dispatch
   signal source: with SIG_IGN the kernel discards the signal unless every thread blocks it, and a
   dispatch source is registered asynchronously, so a signal sent just after start could be lost. */
static int stele_signal_pipe[2] = {-1, -1};

static void stele_on_termination_signal(int signo) {
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    (void)write(stele_signal_pipe[1], &byte, 1);
    errno = saved;
}

int stele_catch_termination_signals(void) {
    if (stele_signal_pipe[0] < 0) {
        if (pipe2(stele_signal_pipe, O_CLOEXEC) != 0) {
            return -1;
        }
        /* Never block in the handler, even if nobody reads (a full pipe drops the byte). */
        if (fcntl(stele_signal_pipe[1], F_SETFL, O_NONBLOCK) != 0) {
            return -1;
        }
    }
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = stele_on_termination_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &action, NULL) != 0 || sigaction(SIGINT, &action, NULL) != 0) {
        return -1;
    }
    /* A parent may have started us with these signals blocked (the mask is inherited across
       fork and exec); blocked, they would stay pending forever. Threads started after this
       call inherit the unblocked mask. */
    sigset_t termination;
    sigemptyset(&termination);
    sigaddset(&termination, SIGTERM);
    sigaddset(&termination, SIGINT);
    errno = pthread_sigmask(SIG_UNBLOCK, &termination, NULL);
    return errno == 0 ? 0 : -1;
}

int stele_wait_termination_signal(void) {
    unsigned char byte;
    for (;;) {
        ssize_t n = read(stele_signal_pipe[0], &byte, 1);
        if (n == 1) {
            return byte;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        return -1;
    }
}
