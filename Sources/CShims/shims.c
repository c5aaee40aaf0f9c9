#define _GNU_SOURCE
#include "CShims.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <dirent.h>
#include <limits.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/msg.h>
#include <netlink/handlers.h>
#include <netlink/attr.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <signal.h>

#define NETNS_RUN_DIR "/run/netns"

/* /run/netns must be a shared mount point so that namespaces bound there are seen by all. */
static int ensure_run_dir(void) {
    if (mkdir(NETNS_RUN_DIR, 0755) < 0 && errno != EEXIST) return -errno;
    if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) == 0) return 0;
    if (errno != EINVAL) return -errno;
    if (mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0) return -errno;
    if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) return -errno;
    return 0;
}

struct create_args { const char *path; const char *lo_alias; int result; };

/* Sets the alias of lo (ifindex 1 in a new namespace) through a route socket of this thread's namespace. */
static int tag_loopback(const char *alias) {
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk) return -ENOMEM;
    int r = nl_connect(sk, NETLINK_ROUTE);
    if (r < 0) { nl_socket_free(sk); return -EIO; }
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    struct ifinfomsg ifi;
    memset(&ifi, 0, sizeof ifi);
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = 1;
    if (!msg || nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 || nla_put_string(msg, IFLA_IFALIAS, alias) < 0) {
        if (msg) nlmsg_free(msg);
        nl_socket_free(sk);
        return -ENOMEM;
    }
    r = nl_send_sync(sk, msg);  /* frees msg */
    nl_socket_free(sk);
    return r < 0 ? -EIO : 0;
}

/* Moves the calling thread into a new namespace, tags it and binds it; the caller moves it back. */
static void make_namespace(struct create_args *a) {
    if (unshare(CLONE_NEWNET) < 0) { a->result = -errno; return; }
    /* The tag goes on before the namespace gets its name: no instant exists in which a
     * namespace carries the lab's name without its tag, whatever kills the process. */
    if (a->lo_alias && (a->result = tag_loopback(a->lo_alias)) < 0) return;
    if (mount("/proc/thread-self/ns/net", a->path, "none", MS_BIND, NULL) < 0) { a->result = -errno; return; }
    a->result = 0;
}

static void pb_ns_leave(int home);

int pb_netns_create(const char *name, const char *lo_alias) {
    static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
    static int prepared = 0;
    char path[512];
    int r;
    if (snprintf(path, sizeof path, "%s/%s", NETNS_RUN_DIR, name) >= (int)sizeof path) return -ENAMETOOLONG;
    pthread_mutex_lock(&once);
    if (!prepared) { r = ensure_run_dir(); if (r < 0) { pthread_mutex_unlock(&once); return r; } prepared = 1; }
    pthread_mutex_unlock(&once);
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) return -errno;
    close(fd);
    struct create_args a = { path, lo_alias, -EIO };
    /* On this thread, as `ip netns add` does: into a new namespace, and back. (A thread made
     * for each namespace cost about a third of the time of creating it.) */
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) { r = -errno; unlink(path); return r; }
    make_namespace(&a);
    pb_ns_leave(home);
    if (a.result < 0) unlink(path);
    return a.result;
}

int pb_netns_delete(const char *name) {
    char path[512];
    if (snprintf(path, sizeof path, "%s/%s", NETNS_RUN_DIR, name) >= (int)sizeof path) return -ENAMETOOLONG;
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) return -errno;
    if (unlink(path) < 0) return -errno;
    return 0;
}

int pb_netns_open(const char *name) {
    char path[512];
    if (snprintf(path, sizeof path, "%s/%s", NETNS_RUN_DIR, name) >= (int)sizeof path) return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Runs between setns(target) and setns(back) on the calling thread. */
static int pb_ns_enter(int nsfd, int *home) {
    *home = -1;
    if (nsfd < 0) return 0;
    *home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (*home < 0) return -errno;
    if (setns(nsfd, CLONE_NEWNET) < 0) { int e = errno; close(*home); *home = -1; return -e; }
    return 0;
}

static void pb_ns_leave(int home) {
    if (home < 0) return;
    /* Going back cannot fail for a namespace we were just in; if it ever did, this thread
     * would be poisoned, so stop rather than run Swift code in the wrong namespace. */
    if (setns(home, CLONE_NEWNET) < 0) abort();
    close(home);
}

/* A netlink socket of PROTOCOL opened in namespace NSFD (-1: this one): the fd, or -errno. */
int pb_netlink_socket_in(int nsfd, int protocol) {
    int home, r = pb_ns_enter(nsfd, &home);
    if (r < 0) return r;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    int e = errno;
    pb_ns_leave(home);
    return fd < 0 ? -e : fd;
}

int pb_nl_connect_in(struct nl_sock *sk, int protocol, int nsfd) {
    int fd = pb_netlink_socket_in(nsfd, protocol);
    if (fd < 0) return fd;
    int r = nl_socket_set_fd(sk, protocol, fd);
    if (r < 0) { close(fd); return -EINVAL; }
    nl_socket_set_buffer_size(sk, 1 << 20, 1 << 20);
    return 0;
}

static int keep_errno(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg) {
    (void)nla;
    *(int *)arg = -e->error;
    return NL_STOP;
}

int pb_nl_keep_errno(struct nl_sock *sk, int *slot) {
    return nl_socket_modify_err_cb(sk, NL_CB_CUSTOM, keep_errno, slot) < 0 ? -EINVAL : 0;
}

/* Opens /proc/sys/KEY (dots or slashes) as seen from namespace NSFD: /proc/sys/net shows the
 * namespace of the thread that opens it, so only the open happens inside. */
static int sysctl_open(int nsfd, const char *key, int flags) {
    char path[512];
    snprintf(path, sizeof path, "/proc/sys/%s", key);
    for (char *p = path + strlen("/proc/sys/"); *p; p++) if (*p == '.') *p = '/';
    int home, r = pb_ns_enter(nsfd, &home);
    if (r < 0) return r;
    int fd = open(path, flags | O_CLOEXEC);
    int e = errno;
    pb_ns_leave(home);
    return fd < 0 ? -e : fd;
}

int pb_sysctl_write(int nsfd, const char *key, const char *value) {
    int fd = sysctl_open(nsfd, key, O_WRONLY);
    if (fd < 0) return fd;
    size_t n = strlen(value);
    ssize_t w = write(fd, value, n);
    int e = errno;
    close(fd);
    if (w < 0) return -e;
    return (size_t)w == n ? 0 : -EIO;
}

int pb_sysctl_read(int nsfd, const char *key, char *buf, int len) {
    int fd = sysctl_open(nsfd, key, O_RDONLY);
    if (fd < 0) return fd;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0) return -e;
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
    return 0;
}

/* The nice value children get back when Pathbed raised its own (INT_MIN: it did not). */
static volatile int pb_child_nice = INT_MIN;

static void pb_restore_nice(void) {
    if (pb_child_nice != INT_MIN) setpriority(PRIO_PROCESS, 0, pb_child_nice);
}

int pb_raise_priority(int nice) {
    errno = 0;
    int before = getpriority(PRIO_PROCESS, 0);
    if (before == -1 && errno != 0) return -errno;
    if (before <= nice) return 0;
    /* Every thread of the process (Linux keeps a nice value per thread); threads made later inherit. */
    DIR *d = opendir("/proc/self/task");
    if (!d) return -errno;
    int failed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int tid = atoi(e->d_name);
        if (tid > 0 && setpriority(PRIO_PROCESS, tid, nice) < 0) failed = errno;
    }
    closedir(d);
    if (failed) return -failed;
    pb_child_nice = before;
    /* The ssh server's session processes that carry our requests (an agent started over ssh). */
    pid_t p = getppid();
    for (int depth = 0; depth < 3 && p > 1; depth++) {
        char path[64], comm[32] = {0}, stat[512] = {0};
        snprintf(path, sizeof path, "/proc/%d/comm", (int)p);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
        fclose(f);
        if (strncmp(comm, "sshd", 4) == 0) setpriority(PRIO_PROCESS, p, nice);
        snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
        f = fopen(path, "r");
        if (!f) break;
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[n] = 0;
        char *close = strrchr(stat, ')');
        int ppid = 0;
        if (!close || sscanf(close + 1, " %*c %d", &ppid) != 1) break;
        p = ppid;
    }
    return 0;
}

pid_t pb_spawn_in(int nsfd, char *const argv[]) {
    pid_t pid = fork();
    if (pid != 0) return pid < 0 ? -errno : pid;
    /* Child: only async-signal-safe calls from here on. */
    pb_restore_nice();
    if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0) _exit(126);
    execvp(argv[0], argv);
    _exit(errno == ENOENT ? 127 : 126);
}

pid_t pb_spawn_in_group(int nsfd, char *const argv[], int in, int out, int err) {
    return pb_spawn_in_group_env(nsfd, argv, NULL, in, out, err);
}

pid_t pb_spawn_in_group_env(int nsfd, char *const argv[], char *const envp[], int in, int out, int err) {
    pid_t pid = fork();
    if (pid != 0) return pid < 0 ? -errno : pid;
    setpgid(0, 0);
    pb_restore_nice();
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* dup2 clears close-on-exec, except onto itself (a pipe made while 0, 1 or 2 was closed
       can be that number): then it is cleared by hand. */
    if (in >= 0 && (in == 0 ? fcntl(0, F_SETFD, 0) : dup2(in, 0)) < 0) _exit(126);
    if (out >= 0 && (out == 1 ? fcntl(1, F_SETFD, 0) : dup2(out, 1)) < 0) _exit(126);
    if (err >= 0 && (err == 2 ? fcntl(2, F_SETFD, 0) : dup2(err, 2)) < 0) _exit(126);
    if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0) _exit(126);
    if (envp) execvpe(argv[0], argv, envp); else execvp(argv[0], argv);
    _exit(errno == ENOENT ? 127 : 126);
}

/* Interrupts: the handler only records the signal; long work polls pb_interrupted() between
 * steps and rolls back, so Ctrl-C or SIGTERM never leaves half a lab behind. */
static volatile sig_atomic_t interrupted_by = 0;

static void on_interrupt(int sig) { interrupted_by = sig; }

void pb_interrupts_catch(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* A parent may have started us with these blocked (the mask is inherited across exec). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void pb_interrupts_default(void) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

int pb_interrupted(void) { return interrupted_by; }

/* Sets a bridge's STP state and forward delay (centiseconds) with an RTM_NEWLINK that carries
 * IFLA_INFO_DATA, which libnl-route 3.7 cannot build for bridges. */
int pb_bridge_set_stp(struct nl_sock *sk, int ifindex, int on, unsigned forward_delay_cs) {
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
    if (!msg) return -ENOMEM;
    struct ifinfomsg ifi;
    memset(&ifi, 0, sizeof ifi);
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = ifindex;
    int r = -EMSGSIZE;
    if (nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) goto out;
    struct nlattr *info = nla_nest_start(msg, IFLA_LINKINFO);
    if (!info || nla_put_string(msg, IFLA_INFO_KIND, "bridge") < 0) goto out;
    struct nlattr *data = nla_nest_start(msg, IFLA_INFO_DATA);
    if (!data) goto out;
    if (on && nla_put_u32(msg, IFLA_BR_FORWARD_DELAY, forward_delay_cs) < 0) goto out;
    if (nla_put_u32(msg, IFLA_BR_STP_STATE, on ? 1 : 0) < 0) goto out;
    nla_nest_end(msg, data);
    nla_nest_end(msg, info);
    r = nl_send_sync(sk, msg);  /* frees msg */
    return r < 0 ? r : 0;
out:
    nlmsg_free(msg);
    return r;
}

int pb_sysctl_access(int nsfd, const char *key, int writable) {
    int fd = sysctl_open(nsfd, key, writable ? O_WRONLY : O_RDONLY);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}


int pb_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}
