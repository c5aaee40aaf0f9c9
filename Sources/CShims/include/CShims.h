#ifndef PATHBED_CSHIMS_H
#define PATHBED_CSHIMS_H
/* The only code that switches namespaces. Each call switches the calling thread, does one
 * thing, and switches back before it returns, so no Swift code ever runs inside a lab's
 * namespace. Functions return 0 or a negative errno. */
#include <sys/types.h>

struct nl_sock;

/* Creates /run/netns/NAME holding a new network namespace, as `ip netns add` does, on a
 * throwaway thread. Fails with -EEXIST if the name is taken. */
int pb_netns_create(const char *name);
/* Unmounts and removes /run/netns/NAME; the kernel frees the namespace when nothing holds it. */
int pb_netns_delete(const char *name);
/* Opens /run/netns/NAME (O_RDONLY|O_CLOEXEC). Returns the fd or a negative errno. */
int pb_netns_open(const char *name);

/* Connects SK to netlink PROTOCOL from inside the namespace NSFD (-1: the caller's own). */
int pb_nl_connect_in(struct nl_sock *sk, int protocol, int nsfd);
/* Makes SK keep the kernel's errno of the last error message in *SLOT (libnl maps it away). */
int pb_nl_keep_errno(struct nl_sock *sk, int *slot);

/* Writes VALUE to /proc/sys/PATH (dots or slashes) as seen from namespace NSFD. */
int pb_sysctl_write(int nsfd, const char *path, const char *value);
/* Reads /proc/sys/PATH from namespace NSFD into BUF (NUL-terminated, trailing newline cut). */
int pb_sysctl_read(int nsfd, const char *path, char *buf, int len);

/* Forks; the child enters namespace NSFD and execs ARGV[0] (PATH search). Returns the pid. */
pid_t pb_spawn_in(int nsfd, char *const argv[]);
#endif
