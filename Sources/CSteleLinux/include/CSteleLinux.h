// Linux facilities that Swift's Glibc module does not expose.
#ifndef STELE_CSTELELINUX_H
#define STELE_CSTELELINUX_H
#include <sys/types.h>

/// The credentials the kernel recorded for the peer of a connected Unix-domain socket
/// (`getsockopt(SO_PEERCRED)`; `struct ucred` is visible only under `_GNU_SOURCE`).
/// Returns 0 on success, or -1 with `errno` set.
int stele_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

/// Connects a new stream socket to the Unix-domain socket at `path`.
/// Returns the descriptor, or -1 with `errno` set (ENAMETOOLONG if the path does not fit).
int stele_unix_connect(const char *path);

/// Commits the file system holding `fd` to disk (`syncfs(2)`, visible only under `_GNU_SOURCE`).
/// Returns 0 on success, or -1 with `errno` set.
int stele_syncfs(int fd);
#endif
