import CNetlink
import CShims
#if canImport(Glibc)
import Glibc
#endif

/// The state of an interface as the kernel reports it.
public struct LinkInfo: Sendable, Hashable {
    public var index: Int32
    public var name: String
    public var kind: String?
    public var mtu: UInt32
    public var isUp: Bool
    public var master: Int32
}

/// A qdisc as the kernel reports it (read back after it is set).
public struct QdiscInfo: Sendable, Hashable {
    public var interfaceIndex: Int32
    public var kind: String
    public var handle: UInt32
    public var parent: UInt32
    /// tbf: bytes per second.
    public var rateBytesPerSecond: Int?
    /// netem: delay in microseconds, loss as a fraction of 2^32 - 1.
    public var delayMicroseconds: Int?
    public var limit: Int?
}

/// A route-netlink socket opened inside one namespace, usable from any thread.
///
/// Like vishvananda/netlink's handle-per-namespace: the socket is created inside the namespace
/// once (a short C section), then every request goes through it. Not thread-safe: one handle
/// per task.
public final class RouteHandle {
    public let namespace: String
    let socket: NetlinkSocket
    var sock: OpaquePointer { socket.pointer }
    var lastErrno: UnsafeMutablePointer<Int32> { socket.lastErrno }
    /// Interface indexes by name. Names inside a lab's namespaces do not change while we work,
    /// so each interface is looked up once, not once per operation.
    private var indexes: [String: Int32] = [:]

    /// `nsfd` -1 opens the handle in the caller's own namespace.
    public init(nsfd: Int32, namespace: String) throws(NetlinkError) {
        self.namespace = namespace
        socket = try NetlinkSocket(protocol: NETLINK_ROUTE, nsfd: nsfd, namespace: namespace, label: "route")
    }

    /// Turns a libnl result into a NetlinkError that carries the kernel's errno.
    func check(_ result: Int32, _ operation: String, _ object: String, hint: String? = nil) throws(NetlinkError) {
        guard result < 0 else { lastErrno.pointee = 0; return }
        var e = lastErrno.pointee
        if e == 0 { e = Self.errnoFromLibnl(-result) }
        lastErrno.pointee = 0
        throw NetlinkError(operation, object, namespace: namespace, errno: e, hint: hint ?? Self.hint(for: e, operation))
    }

    static func errnoFromLibnl(_ code: Int32) -> Int32 {
        switch code {
        case NLE_EXIST: return EEXIST
        case NLE_OBJ_NOTFOUND, NLE_NODEV: return ENODEV
        case NLE_PERM: return EPERM
        case NLE_INVAL: return EINVAL
        case NLE_NOMEM: return ENOMEM
        case NLE_OPNOTSUPP: return EOPNOTSUPP
        case NLE_BUSY: return EBUSY
        case NLE_RANGE: return ERANGE
        default: return EIO
        }
    }

    static func hint(for errno: Int32, _ operation: String) -> String? {
        switch errno {
        case EPERM: return "run as root (network namespaces and qdiscs need CAP_NET_ADMIN)"
        case EOPNOTSUPP where operation.contains("link"), ENOENT where operation.contains("qdisc"):
            return "this kernel lacks the module for it; `pathbed doctor` lists what it supports"
        default: return nil
        }
    }

    // MARK: Links

    public func ifindex(_ name: String) throws(NetlinkError) -> Int32 {
        if let i = indexes[name] { return i }
        var link: OpaquePointer?
        try check(rtnl_link_get_kernel(sock, 0, name, &link), "find interface", name)
        defer { rtnl_link_put(link) }
        let i = rtnl_link_get_ifindex(link)
        indexes[name] = i
        return i
    }

    public func links() throws(NetlinkError) -> [LinkInfo] {
        var cache: OpaquePointer?
        try check(rtnl_link_alloc_cache(sock, AF_UNSPEC, &cache), "list interfaces", "")
        defer { nl_cache_free(cache) }
        var out: [LinkInfo] = []
        var obj = nl_cache_get_first(cache)
        while let o = obj {
            let l = o
            out.append(LinkInfo(index: rtnl_link_get_ifindex(l), name: String(cString: rtnl_link_get_name(l)),
                                kind: rtnl_link_get_type(l).map { String(cString: $0) }, mtu: rtnl_link_get_mtu(l),
                                isUp: rtnl_link_get_flags(l) & UInt32(IFF_UP.rawValue) != 0, master: rtnl_link_get_master(l)))
            obj = nl_cache_get_next(o)
        }
        return out
    }

    /// A veth pair created straight into two namespaces (this handle's namespace only sends the request).
    public func createVeth(_ name: String, nsfd: Int32, peer: String, peerNsfd: Int32, mtu: UInt32, object: String) throws(NetlinkError) {
        guard let link = rtnl_link_veth_alloc() else { throw NetlinkError("create veth", object, namespace: namespace, errno: ENOMEM) }
        defer { rtnl_link_put(link) }
        let p = rtnl_link_veth_get_peer(link)
        rtnl_link_set_name(link, name)
        rtnl_link_set_ns_fd(link, nsfd)
        rtnl_link_set_mtu(link, mtu)
        rtnl_link_set_name(p, peer)
        rtnl_link_set_ns_fd(p, peerNsfd)
        rtnl_link_set_mtu(p, mtu)
        rtnl_link_put(p)
        try check(rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL), "create veth", object)
    }

    public func createBridge(_ name: String, stp: Bool) throws(NetlinkError) {
        guard let link = rtnl_link_alloc() else { throw NetlinkError("create bridge", name, namespace: namespace, errno: ENOMEM) }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        try check(rtnl_link_set_type(link, "bridge"), "create bridge", name)
        try check(rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL), "create bridge", name)
        if stp { try NetlinkSysfs.setBridgeSTP(self, name) }
    }

    public func enslave(_ name: String, to bridge: String) throws(NetlinkError) {
        let master = try ifindex(bridge), slave = try ifindex(name)
        try check(rtnl_link_enslave_ifindex(sock, master, slave), "add port", "\(name) to bridge \(bridge)")
    }

    public func setUp(_ name: String) throws(NetlinkError) { try setAdministrativeState(name, up: true) }
    public func setDown(_ name: String) throws(NetlinkError) { try setAdministrativeState(name, up: false) }

    func setAdministrativeState(_ name: String, up: Bool) throws(NetlinkError) {
        var orig: OpaquePointer?
        try check(rtnl_link_get_kernel(sock, 0, name, &orig), "find interface", name)
        defer { rtnl_link_put(orig) }
        let change = rtnl_link_alloc()
        defer { rtnl_link_put(change) }
        if up { rtnl_link_set_flags(change, UInt32(IFF_UP.rawValue)) } else { rtnl_link_unset_flags(change, UInt32(IFF_UP.rawValue)) }
        try check(rtnl_link_change(sock, orig, change, 0), up ? "set up" : "set down", name)
    }

    // MARK: Addresses, routes, rules

    static func parse(_ text: String, _ family: Int32 = AF_UNSPEC) -> OpaquePointer? {
        var a: OpaquePointer?
        return nl_addr_parse(text, family, &a) == 0 ? a : nil
    }

    public func addAddress(_ cidr: String, to name: String) throws(NetlinkError) {
        let index = try ifindex(name)
        guard let local = Self.parse(cidr) else { throw NetlinkError("add address", cidr, namespace: namespace, errno: EINVAL) }
        defer { nl_addr_put(local) }
        let addr = rtnl_addr_alloc()
        defer { rtnl_addr_put(addr) }
        rtnl_addr_set_ifindex(addr, index)
        rtnl_addr_set_local(addr, local)
        // An IPv6 address on a fresh veth would wait for duplicate detection before routes can use it.
        if nl_addr_get_family(local) == AF_INET6 { rtnl_addr_set_flags(addr, UInt32(IFA_F_NODAD)) }
        try check(rtnl_addr_add(sock, addr, NLM_F_CREATE | NLM_F_EXCL), "add address", "\(cidr) on \(name)")
    }

    public struct RouteSpec: Sendable {
        public var destination: String
        public var via: String?
        public var device: String?
        public var source: String?
        public var metric: UInt32?
        public var table: UInt32?
        public var scopeLink: Bool
        public init(destination: String, via: String?, device: String?, source: String?, metric: UInt32?, table: UInt32?, scopeLink: Bool) {
            self.destination = destination; self.via = via; self.device = device; self.source = source
            self.metric = metric; self.table = table; self.scopeLink = scopeLink
        }
    }

    public func addRoute(_ r: RouteSpec) throws(NetlinkError) {
        let object = "\(r.destination)\(r.via.map { " via \($0)" } ?? "")\(r.device.map { " dev \($0)" } ?? "")\(r.table.map { " table \($0)" } ?? "")"
        let family: Int32 = (r.via ?? r.destination).contains(":") ? AF_INET6 : AF_INET
        let destText = r.destination == "default" ? (family == AF_INET6 ? "::/0" : "0.0.0.0/0") : r.destination
        guard let dst = Self.parse(destText, family) else { throw NetlinkError("add route", object, namespace: namespace, errno: EINVAL) }
        defer { nl_addr_put(dst) }
        let route = rtnl_route_alloc()
        defer { rtnl_route_put(route) }
        rtnl_route_set_family(route, UInt8(family))
        try check(rtnl_route_set_dst(route, dst), "add route", object)
        rtnl_route_set_table(route, r.table ?? UInt32(RT_TABLE_MAIN.rawValue))
        if let m = r.metric { rtnl_route_set_priority(route, m) }
        rtnl_route_set_scope(route, UInt8((r.scopeLink ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE).rawValue))
        rtnl_route_set_protocol(route, UInt8(RTPROT_STATIC))
        rtnl_route_set_type(route, UInt8(RTN_UNICAST))
        if let s = r.source, let src = Self.parse(s, family) {
            defer { nl_addr_put(src) }
            try check(rtnl_route_set_pref_src(route, src), "add route", object)
        }
        let nh = rtnl_route_nh_alloc()
        if let dev = r.device { rtnl_route_nh_set_ifindex(nh, try ifindex(dev)) }
        if let via = r.via, let gw = Self.parse(via, family) {
            rtnl_route_nh_set_gateway(nh, gw)
            nl_addr_put(gw)
        }
        rtnl_route_add_nexthop(route, nh)  // the route owns the nexthop now
        try check(rtnl_route_add(sock, route, NLM_F_CREATE | NLM_F_EXCL), "add route", object)
    }

    public func addRule(from source: String, table: UInt32, priority: UInt32) throws(NetlinkError) {
        let object = "from \(source) table \(table)"
        let family: Int32 = source.contains(":") ? AF_INET6 : AF_INET
        guard let src = Self.parse(source.contains("/") ? source : source + (family == AF_INET6 ? "/128" : "/32"), family) else {
            throw NetlinkError("add rule", object, namespace: namespace, errno: EINVAL)
        }
        defer { nl_addr_put(src) }
        let rule = rtnl_rule_alloc()
        defer { rtnl_rule_put(rule) }
        rtnl_rule_set_family(rule, family)
        try check(rtnl_rule_set_src(rule, src), "add rule", object)
        rtnl_rule_set_table(rule, table)
        rtnl_rule_set_prio(rule, priority)
        rtnl_rule_set_action(rule, UInt8(FR_ACT_TO_TBL))
        try check(rtnl_rule_add(sock, rule, NLM_F_CREATE | NLM_F_EXCL), "add rule", object)
    }

    // MARK: Qdiscs

    /// A qdisc object for the root of `name` with handle 1:; the caller puts it.
    func rootQdisc(_ name: String, kind: String) throws(NetlinkError) -> OpaquePointer? {
        let index = try ifindex(name)
        let q = rtnl_qdisc_alloc()
        rtnl_tc_set_ifindex(q, index)
        rtnl_tc_set_parent(q, TC_H_ROOT)
        rtnl_tc_set_handle(q, 0x1_0000)
        let r = rtnl_tc_set_kind(q, kind)
        if r < 0 { rtnl_qdisc_put(q) }
        try check(r, "add qdisc \(kind)", "on \(name)")
        return q
    }

    /// tbf as the root qdisc: rate in bytes/s, burst and limit in bytes.
    public func setTBF(_ name: String, rateBytes: Int, burst: Int, limitBytes: Int) throws(NetlinkError) {
        let q = try rootQdisc(name, kind: "tbf")
        defer { rtnl_qdisc_put(q) }
        rtnl_qdisc_tbf_set_limit(q, Int32(limitBytes))
        rtnl_qdisc_tbf_set_rate(q, Int32(clamping: rateBytes), Int32(burst), 0)
        try check(rtnl_qdisc_add(sock, q, NLM_F_CREATE | NLM_F_EXCL), "add qdisc tbf", "on \(name)")
    }

    /// htb root 1: with class 1:1 at the rate, and the netem qdisc 10: below it.
    public func setHTB(_ name: String, rateBytes: UInt64, burst: Int) throws(NetlinkError) {
        let index = try ifindex(name)
        let q = try rootQdisc(name, kind: "htb")
        defer { rtnl_qdisc_put(q) }
        _ = rtnl_htb_set_defcls(q, 0x1_0001)
        try check(rtnl_qdisc_add(sock, q, NLM_F_CREATE | NLM_F_EXCL), "add qdisc htb", "on \(name)")
        let c = rtnl_class_alloc()
        defer { rtnl_class_put(c) }
        rtnl_tc_set_ifindex(c, index)
        rtnl_tc_set_parent(c, 0x1_0000)
        rtnl_tc_set_handle(c, 0x1_0001)
        try check(rtnl_tc_set_kind(c, "htb"), "add class htb", "1:1 on \(name)")
        _ = rtnl_htb_set_rate64(c, rateBytes)
        _ = rtnl_htb_set_ceil64(c, rateBytes)
        _ = rtnl_htb_set_rbuffer(c, UInt32(burst))
        _ = rtnl_htb_set_cbuffer(c, UInt32(burst))
        try check(rtnl_class_add(sock, c, NLM_F_CREATE | NLM_F_EXCL), "add class htb", "1:1 on \(name)")
    }

    public struct NetemParameters: Sendable {
        public var delayMicroseconds = 0, jitterMicroseconds = 0
        public var delayCorrelation: Double?, distribution: String?
        public var loss: Double?, lossCorrelation: Double?
        public var duplicate: Double?, corrupt: Double?, reorder: Double?, reorderCorrelation: Double?, gap: Int?
        public var limitPackets = 1000
        public init() {}
    }

    /// netem as root (parent nil) or below htb class 1:1.
    public func setNetem(_ name: String, _ p: NetemParameters, belowHTB: Bool) throws(NetlinkError) {
        let index = try ifindex(name)
        let q = rtnl_qdisc_alloc()
        defer { rtnl_qdisc_put(q) }
        rtnl_tc_set_ifindex(q, index)
        rtnl_tc_set_parent(q, belowHTB ? 0x1_0001 : TC_H_ROOT)
        rtnl_tc_set_handle(q, belowHTB ? 0x10_0000 : 0x1_0000)
        try check(rtnl_tc_set_kind(q, "netem"), "add qdisc netem", "on \(name)",
                  hint: "netem (sch_netem) is needed for delay and loss")
        // libnl takes probabilities as fractions of 2^32 - 1, as the kernel does.
        func prob(_ pct: Double) -> Int32 { Int32(bitPattern: UInt32((pct / 100 * Double(UInt32.max)).rounded())) }
        rtnl_netem_set_limit(q, Int32(p.limitPackets))
        if p.delayMicroseconds > 0 { rtnl_netem_set_delay(q, Int32(p.delayMicroseconds)) }
        if p.jitterMicroseconds > 0 { rtnl_netem_set_jitter(q, Int32(p.jitterMicroseconds)) }
        if let c = p.delayCorrelation { rtnl_netem_set_delay_correlation(q, prob(c)) }
        if let d = p.distribution { try check(rtnl_netem_set_delay_distribution(q, d), "load netem distribution", d) }
        if let l = p.loss { rtnl_netem_set_loss(q, prob(l)) }
        if let c = p.lossCorrelation { rtnl_netem_set_loss_correlation(q, prob(c)) }
        if let d = p.duplicate { rtnl_netem_set_duplicate(q, prob(d)) }
        if let c = p.corrupt { rtnl_netem_set_corruption_probability(q, prob(c)) }
        if let r = p.reorder { rtnl_netem_set_reorder_probability(q, prob(r)) }
        if let c = p.reorderCorrelation { rtnl_netem_set_reorder_correlation(q, prob(c)) }
        if let g = p.gap { rtnl_netem_set_gap(q, Int32(g)) }
        try check(rtnl_qdisc_add(sock, q, NLM_F_CREATE | NLM_F_EXCL), "add qdisc netem", "on \(name)",
                  hint: "netem (sch_netem) is needed for delay and loss")
    }

    /// Every qdisc in this namespace, as the kernel reports it.
    public func qdiscs() throws(NetlinkError) -> [QdiscInfo] {
        var cache: OpaquePointer?
        try check(rtnl_qdisc_alloc_cache(sock, &cache), "list qdiscs", "")
        defer { nl_cache_free(cache) }
        var out: [QdiscInfo] = []
        var obj = nl_cache_get_first(cache)
        while let o = obj {
            let tc = o
            let kind = rtnl_tc_get_kind(tc).map { String(cString: $0) } ?? "?"
            var info = QdiscInfo(interfaceIndex: rtnl_tc_get_ifindex(tc), kind: kind, handle: rtnl_tc_get_handle(tc), parent: rtnl_tc_get_parent(tc))
            if kind == "tbf" {
                info.rateBytesPerSecond = Int(rtnl_qdisc_tbf_get_rate(tc))
                info.limit = Int(rtnl_qdisc_tbf_get_limit(tc))
            } else if kind == "netem" {
                info.delayMicroseconds = Int(rtnl_netem_get_delay(tc))
                info.limit = Int(rtnl_netem_get_limit(tc))
            }
            out.append(info)
            obj = nl_cache_get_next(o)
        }
        return out
    }

    /// The htb class 1:1 rate on an interface, in bytes per second.
    public func htbRate(_ name: String) throws(NetlinkError) -> UInt64? {
        let index = try ifindex(name)
        var cache: OpaquePointer?
        try check(rtnl_class_alloc_cache(sock, index, &cache), "list classes", "on \(name)")
        defer { nl_cache_free(cache) }
        guard let c = rtnl_class_get(cache, index, 0x1_0001) else { return nil }
        defer { rtnl_class_put(c) }
        var rate: UInt64 = 0
        return rtnl_htb_get_rate64(c, &rate) == 0 ? rate : nil
    }
}

enum NetlinkSysfs {
    /// STP is a bridge option libnl-route 3.7 does not set on creation; it is a per-bridge sysfs knob
    /// that is only reachable from the bridge's namespace, so it is left to a later release.
    static func setBridgeSTP(_ handle: RouteHandle, _ name: String) throws(NetlinkError) {
        throw NetlinkError("enable STP on bridge", name, namespace: handle.namespace, errno: EOPNOTSUPP,
                           hint: "STP is not supported yet; remove `stp: true` (and parallel links between bridges)")
    }
}

extension RouteHandle {
    /// A bare gretap device, only to learn whether the kernel has gretap (`pathbed doctor`).
    public func probeGretap(_ name: String) throws(NetlinkError) {
        guard let link = rtnl_link_alloc() else { throw NetlinkError("create gretap", name, namespace: namespace, errno: ENOMEM) }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        try check(rtnl_link_set_type(link, "gretap"), "create gretap", name)
        try check(rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL), "create gretap", name)
    }
}
