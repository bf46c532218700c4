// Linux facilities that Swift's Glibc module does not expose.
#ifndef STELE_CSTELELINUX_H
#define STELE_CSTELELINUX_H
#include <sys/types.h>

/// The credentials the kernel recorded for the peer of a connected Unix-domain socket
/// (`getsockopt(SO_PEERCRED)`; `struct ucred` is visible only under `_GNU_SOURCE`).
/// Returns 0 on success, or -1 with `errno` set.
int stele_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);
#endif
