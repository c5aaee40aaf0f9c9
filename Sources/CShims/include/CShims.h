#ifndef PATHBED_CSHIMS_H
#define PATHBED_CSHIMS_H
/* The only code that switches namespaces. Each call switches the calling thread, does one
 * thing, and switches back before it returns, so no Swift code ever runs inside a lab's
 * namespace. Functions return 0 or a negative errno. */
#include <sys/types.h>

struct nl_sock;

/* Creates /run/netns/NAME holding a new network namespace, as `ip netns add` does, on a
 * throwaway thread. Fails with -EEXIST if the name is taken. LO_ALIAS (or NULL) is set on the
 * namespace's loopback before the namespace is bound to its name. */
int pb_netns_create(const char *name, const char *lo_alias);
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

/* 0 when /proc/sys/KEY exists in namespace NSFD and can be opened for writing (or reading). */
int pb_sysctl_access(int nsfd, const char *key, int writable);

/* Forks; the child enters namespace NSFD and execs ARGV[0] (PATH search). Returns the pid. */
pid_t pb_spawn_in(int nsfd, char *const argv[]);
/* Lowers this process's nice value to NICE (every thread, and the sshd session processes it was
 * started from), so that its timing holds on a saturated host; the programs it starts get the
 * nice value it had. 0, or -errno (not root: EACCES). */
int pb_raise_priority(int nice);
/* Like pb_spawn_in, with stdin, stdout and stderr set to IN, OUT and ERR (-1: inherit), in a
 * process group of its own (so that it and its children can be stopped together), and with
 * SIGINT, SIGTERM, SIGHUP and SIGPIPE back at their defaults. */
pid_t pb_spawn_in_group(int nsfd, char *const argv[], int in, int out, int err);
/* Like pb_spawn_in_group, with the environment ENVP (NULL: this process's). */
pid_t pb_spawn_in_group_env(int nsfd, char *const argv[], char *const envp[], int in, int out, int err);

/* pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start (no window for a fork). */
int pb_pipe_cloexec(int fds[2]);

/* Signal handling for long work: SIGINT, SIGTERM and SIGHUP only set a flag that
 * pb_interrupted() returns (the signal number, or 0). */
void pb_interrupts_catch(void);
void pb_interrupts_default(void);
int pb_interrupted(void);

/* Sets STP on the bridge IFINDEX (and its forward delay in centiseconds when on), with the
 * socket SK of the bridge's namespace. Returns 0 or a negative libnl error. */
int pb_bridge_set_stp(struct nl_sock *sk, int ifindex, int on, unsigned forward_delay_cs);
/* One established TCP socket as INET_DIAG reports it (TCP_INFO; for an MPTCP subflow, its
 * connection's local token from the ULP info). */
struct pb_socket {
    unsigned char family;        /* AF_INET or AF_INET6 */
    unsigned char has_token;
    unsigned short sport, dport; /* host order */
    unsigned char src[16], dst[16];
    unsigned int ifindex;        /* bound device, 0 if none */
    unsigned int token;          /* MPTCP_SUBFLOW_ATTR_TOKEN_LOC */
    unsigned int cwnd;
    unsigned int srtt_us;
    unsigned int total_retrans;
    unsigned long long bytes_acked, bytes_received;
    /* For an MPTCP connection (pb_sockdiag_dump_mptcp): 1, its subflows now, and whether
     * bytes_acked/bytes_received are the kernel's byte counters (6.2 and later: 1) or its
     * data sequence numbers snd_una/rcv_nxt (0; their differences are the same bytes). */
    unsigned char is_mptcp, subflows, byte_counters;
};
/* A NETLINK_SOCK_DIAG socket opened in namespace NSFD (-1: this one). Returns it or -errno. */
int pb_sockdiag_open(int nsfd);
/* Dumps the established TCP sockets of FAMILY into OUT (at most MAX). Returns how many, or
 * -errno. */
int pb_sockdiag_dump(int fd, int family, struct pb_socket *out, int max);
/* Dumps the established MPTCP connections of FAMILY (MPTCP_INFO by INET_DIAG, as `ss -M`) into
 * OUT (at most MAX): token, subflows, data-level bytes. Returns how many, or -errno (-ENOENT
 * or -EINVAL where the kernel has no MPTCP diagnostics). */
int pb_sockdiag_dump_mptcp(int fd, int family, struct pb_socket *out, int max);
#endif
