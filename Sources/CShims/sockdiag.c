/* Established TCP sockets by INET_DIAG, as `ss -ti` reads them (iproute2's misc/ss.c). */
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <linux/mptcp.h>
#include <netinet/in.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <arpa/inet.h>
#include "CShims.h"

/* shims.c: a netlink socket opened in a namespace. */
int pb_netlink_socket_in(int nsfd, int protocol);

int pb_sockdiag_open(int nsfd) {
    int fd = pb_netlink_socket_in(nsfd, NETLINK_SOCK_DIAG);
    if (fd < 0) return fd;
    struct timeval tv = { .tv_sec = 2, .tv_usec = 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void ulp_token(struct rtattr *ulp, int len, struct pb_socket *s) {
    for (struct rtattr *a = ulp; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type != INET_ULP_INFO_MPTCP) continue;
        int inner = RTA_PAYLOAD(a);
        for (struct rtattr *b = RTA_DATA(a); RTA_OK(b, inner); b = RTA_NEXT(b, inner)) {
            if (b->rta_type == MPTCP_SUBFLOW_ATTR_TOKEN_LOC && RTA_PAYLOAD(b) >= 4) {
                memcpy(&s->token, RTA_DATA(b), 4);
                s->has_token = 1;
            }
        }
    }
}

/* struct mptcp_info read by offset: 6.1 ends after mptcpi_csum_enabled (43 bytes); 6.2 added
 * the retransmission and byte counters. */
static unsigned long long u64_at(const unsigned char *p, size_t len, size_t off) {
    unsigned long long v = 0;
    if (len >= off + 8) memcpy(&v, p + off, 8);
    return v;
}

static void mptcp_info_into(const unsigned char *p, size_t len, struct pb_socket *s) {
    s->is_mptcp = 1;
    /* mptcpi_subflows_total (6.10 and later) counts the first subflow; mptcpi_subflows does not. */
    if (len >= 81) s->subflows = p[80];
    else if (len >= 1) s->subflows = p[0] < 255 ? p[0] + 1 : 255;
    if (len >= 16) { memcpy(&s->token, p + 12, 4); s->has_token = 1; }
    if (len >= 80) {
        unsigned int retrans;
        memcpy(&retrans, p + 44, 4);
        s->total_retrans = retrans;
        s->bytes_acked = u64_at(p, len, 72);
        s->bytes_received = u64_at(p, len, 64);
        s->byte_counters = 1;
    } else {
        s->bytes_acked = u64_at(p, len, 24);    /* mptcpi_snd_una */
        s->bytes_received = u64_at(p, len, 32); /* mptcpi_rcv_nxt */
    }
}

static int dump(int fd, int family, unsigned int protocol, struct pb_socket *out, int max) {
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
        struct rtattr proto_attr;
        unsigned int proto;
    } req;
    memset(&req, 0, sizeof req);
    /* A protocol past 255 (IPPROTO_MPTCP) goes in INET_DIAG_REQ_PROTOCOL, as iproute2's ss does. */
    int with_attr = protocol > 255;
    req.nlh.nlmsg_len = with_attr ? sizeof req : NLMSG_LENGTH(sizeof req.r);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nlh.nlmsg_seq = 1;
    req.r.sdiag_family = family;
    req.r.sdiag_protocol = with_attr ? 0 : protocol;
    req.r.idiag_states = 1u << 1; /* TCP_ESTABLISHED */
    req.r.idiag_ext = 1u << (INET_DIAG_INFO - 1);
    if (with_attr) {
        req.proto_attr.rta_type = INET_DIAG_REQ_PROTOCOL;
        req.proto_attr.rta_len = RTA_LENGTH(sizeof req.proto);
        req.proto = protocol;
    }
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, &req, req.nlh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
    static __thread char buf[64 * 1024];
    int n = 0;
    for (;;) {
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got < 0) { if (errno == EINTR) continue; return -errno; }
        if (got == 0) return n;
        int len = (int)got;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE) return n;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error < 0 ? e->error : n;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
            struct inet_diag_msg *m = NLMSG_DATA(h);
            if (n >= max) continue; /* drain the dump */
            struct pb_socket *s = &out[n];
            memset(s, 0, sizeof *s);
            s->family = m->idiag_family;
            s->sport = ntohs(m->id.idiag_sport);
            s->dport = ntohs(m->id.idiag_dport);
            memcpy(s->src, m->id.idiag_src, 16);
            memcpy(s->dst, m->id.idiag_dst, 16);
            s->ifindex = m->id.idiag_if;
            int alen = h->nlmsg_len - NLMSG_LENGTH(sizeof *m);
            for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
                if (a->rta_type == INET_DIAG_INFO && with_attr) {
                    mptcp_info_into(RTA_DATA(a), RTA_PAYLOAD(a), s);
                } else if (a->rta_type == INET_DIAG_INFO) {
                    struct tcp_info ti;
                    memset(&ti, 0, sizeof ti);
                    size_t l = RTA_PAYLOAD(a) < sizeof ti ? RTA_PAYLOAD(a) : sizeof ti;
                    memcpy(&ti, RTA_DATA(a), l);
                    s->cwnd = ti.tcpi_snd_cwnd;
                    s->srtt_us = ti.tcpi_rtt;
                    s->total_retrans = ti.tcpi_total_retrans;
                    if (l >= offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked) s->bytes_acked = ti.tcpi_bytes_acked;
                    if (l >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received) s->bytes_received = ti.tcpi_bytes_received;
                } else if (a->rta_type == INET_DIAG_ULP_INFO) {
                    ulp_token(RTA_DATA(a), RTA_PAYLOAD(a), s);
                }
            }
            n++;
        }
    }
}

int pb_sockdiag_dump(int fd, int family, struct pb_socket *out, int max) {
    return dump(fd, family, IPPROTO_TCP, out, max);
}

int pb_sockdiag_dump_mptcp(int fd, int family, struct pb_socket *out, int max) {
    return dump(fd, family, 262 /* IPPROTO_MPTCP */, out, max);
}
