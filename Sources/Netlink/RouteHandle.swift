import CNetlink
import CShims
import NetlinkTypes
#if canImport(Glibc)
import Glibc
#endif

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
        case EOPNOTSUPP where operation.contains("create"), ENOENT where operation.contains("qdisc"):
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

    /// Drops what the cache knows of `name`: a device made or removed through another handle
    /// (the far end of a veth) must be looked up again.
    public func forget(_ name: String) { indexes[name] = nil }

    /// Whether `name` exists now, asked of the kernel (not of the index cache, which a device
    /// the kernel removed by itself, the peer of a veth in a deleted namespace, would outlive).
    public func exists(_ name: String) throws(NetlinkError) -> Bool {
        var link: OpaquePointer?
        let rc = rtnl_link_get_kernel(sock, 0, name, &link)
        if rc >= 0 { rtnl_link_put(link); return true }
        indexes[name] = nil
        do { try check(rc, "find interface", name) } catch {
            if error.errno == ENODEV || error.errno == ENOENT { return false }
            throw error
        }
        return false
    }

    public func links() throws(NetlinkError) -> [LinkInfo] {
        var cache: OpaquePointer?
        try check(rtnl_link_alloc_cache(sock, AF_UNSPEC, &cache), "list interfaces", "")
        defer { nl_cache_free(cache) }
        var out: [LinkInfo] = []
        var obj = nl_cache_get_first(cache)
        while let l = obj {
            var info = LinkInfo(index: rtnl_link_get_ifindex(l), name: String(cString: rtnl_link_get_name(l)),
                                kind: rtnl_link_get_type(l).map { String(cString: $0) }, mtu: rtnl_link_get_mtu(l),
                                isUp: rtnl_link_get_flags(l) & UInt32(IFF_UP.rawValue) != 0, master: rtnl_link_get_master(l),
                                group: rtnl_link_get_group(l), alias: rtnl_link_get_ifalias(l).map { String(cString: $0) })
            info.rxBytes = rtnl_link_get_stat(l, RTNL_LINK_RX_BYTES)
            info.txBytes = rtnl_link_get_stat(l, RTNL_LINK_TX_BYTES)
            info.isRunning = rtnl_link_get_flags(l) & UInt32(IFF_RUNNING.rawValue) != 0
            if info.kind == "gretap" || info.kind == "gre" {
                let key = UInt32(bigEndian: rtnl_link_ipgre_get_ikey(l))
                if key != 0 { info.greKey = key }
            } else if info.kind == "vxlan" {
                var vni: UInt32 = 0
                if rtnl_link_vxlan_get_id(l, &vni) == 0 { info.vxlanID = vni }
            }
            out.append(info)
            obj = nl_cache_get_next(l)
        }
        return out
    }

    /// Creates a link (exclusive: an existing name fails with EEXIST), tagged with its group.
    public func createLink(_ spec: LinkSpec) throws(NetlinkError) {
        let a = spec.attributes
        switch spec {
        case let .veth(_, nsfd, peer, peerNsfd):
            let object = "\(a.name) <-> \(peer.name)"
            guard let link = rtnl_link_veth_alloc() else { throw NetlinkError("create veth", object, namespace: namespace, errno: ENOMEM) }
            defer { rtnl_link_put(link) }
            Self.setAttributes(link, a)
            if nsfd >= 0 { rtnl_link_set_ns_fd(link, nsfd) }
            let p = rtnl_link_veth_get_peer(link)
            Self.setAttributes(p, peer)
            rtnl_link_set_ns_fd(p, peerNsfd)
            rtnl_link_put(p)
            try check(rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL), "create veth", object)
        case let .bridge(_, stp):
            guard let link = rtnl_link_alloc() else { throw NetlinkError("create bridge", a.name, namespace: namespace, errno: ENOMEM) }
            defer { rtnl_link_put(link) }
            Self.setAttributes(link, a)
            try check(rtnl_link_set_type(link, "bridge"), "create bridge", a.name)
            try check(rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL), "create bridge", a.name)
            if stp { try setBridgeSTP(a.name, on: true) }
        case let .gretap(_, nsfd, local, remote, key):
            let object = "\(a.name) (local \(local) remote \(remote) key \(key))"
            guard local.bytes.count == 4, remote.bytes.count == 4 else {
                throw NetlinkError("create gretap", object, namespace: namespace, errno: EAFNOSUPPORT, hint: "gretap underlay addresses must be IPv4")
            }
            guard let link = rtnl_link_ipgretap_alloc() else { throw NetlinkError("create gretap", object, namespace: namespace, errno: ENOMEM) }
            defer { rtnl_link_put(link) }
            Self.setAttributes(link, a)
            if nsfd >= 0 { rtnl_link_set_ns_fd(link, nsfd) }
            func be(_ b: [UInt8]) -> UInt32 { b.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }  // already network order
            _ = rtnl_link_ipgre_set_local(link, be(local.bytes))
            _ = rtnl_link_ipgre_set_remote(link, be(remote.bytes))
            let keyFlag = UInt16(0x2000).bigEndian  // GRE_KEY, as the kernel wants it: network order
            _ = rtnl_link_ipgre_set_iflags(link, keyFlag)
            _ = rtnl_link_ipgre_set_oflags(link, keyFlag)
            _ = rtnl_link_ipgre_set_ikey(link, key.bigEndian)
            _ = rtnl_link_ipgre_set_okey(link, key.bigEndian)
            try check(rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL), "create gretap", object,
                      hint: nil)
        case let .vxlan(_, local, remote, vni, port):
            let object = "\(a.name) (local \(local) remote \(remote) VNI \(vni))"
            guard local.bytes.count == 4, remote.bytes.count == 4, vni < 1 << 24 else {
                throw NetlinkError("create vxlan", object, namespace: namespace, errno: EINVAL, hint: "vxlan underlay addresses must be IPv4, its VNI below 16,777,216")
            }
            guard let link = rtnl_link_vxlan_alloc() else { throw NetlinkError("create vxlan", object, namespace: namespace, errno: ENOMEM) }
            defer { rtnl_link_put(link) }
            Self.setAttributes(link, a)
            let l = Self.nlAddress(local), r = Self.nlAddress(remote)
            defer { nl_addr_put(l); nl_addr_put(r) }
            _ = rtnl_link_vxlan_set_id(link, vni)
            _ = rtnl_link_vxlan_set_local(link, l)
            _ = rtnl_link_vxlan_set_group(link, r)  // a unicast group is the one remote
            _ = rtnl_link_vxlan_set_port(link, UInt32(port))
            _ = rtnl_link_vxlan_set_learning(link, 0)
            try check(rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL), "create vxlan", object,
                      hint: "another vxlan device on this host may use VNI \(vni) on port \(port)")
        }
    }

    static func setAttributes(_ link: OpaquePointer?, _ a: LinkAttributes) {
        rtnl_link_set_name(link, a.name)
        if let mtu = a.mtu { rtnl_link_set_mtu(link, mtu) }
        if a.group != 0 { rtnl_link_set_group(link, a.group) }
    }

    /// Deletes a link by name (its peer goes with it for a veth).
    public func deleteLink(_ name: String) throws(NetlinkError) {
        guard let link = rtnl_link_alloc() else { throw NetlinkError("delete link", name, namespace: namespace, errno: ENOMEM) }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        try check(rtnl_link_delete(sock, link), "delete link", name)
        indexes[name] = nil
    }

    public func setBridgeSTP(_ name: String, on: Bool) throws(NetlinkError) {
        // 2 s forward delay (the kernel's least with STP on): ports forward 4 s after they come up.
        try check(pb_bridge_set_stp(sock, try ifindex(name), on ? 1 : 0, 200), "set STP on bridge", name)
    }

    public func enslave(_ name: String, to bridge: String) throws(NetlinkError) {
        let master = try ifindex(bridge), slave = try ifindex(name)
        try check(rtnl_link_enslave_ifindex(sock, master, slave), "add port", "\(name) to bridge \(bridge)")
    }

    public func setUp(_ name: String) throws(NetlinkError) { try modifyLink(name, "set up", { rtnl_link_set_flags($0, UInt32(IFF_UP.rawValue)) }) }
    public func setDown(_ name: String) throws(NetlinkError) { try modifyLink(name, "set down", { rtnl_link_unset_flags($0, UInt32(IFF_UP.rawValue)) }) }
    /// Moves a link into the namespace `nsfd`, renaming it on the way. A tunnel keeps its
    /// underlay in the namespace it was made in.
    public func move(_ name: String, toNamespace nsfd: Int32, as new: String) throws(NetlinkError) {
        try modifyLink(name, "move into its namespace as \(new)", { rtnl_link_set_ns_fd($0, nsfd); rtnl_link_set_name($0, new) })
        indexes[name] = nil
    }

    /// Renames a link (it must be down, as a new one is).
    public func rename(_ name: String, to new: String) throws(NetlinkError) {
        try modifyLink(name, "rename to \(new)", { rtnl_link_set_name($0, new) })
        indexes[name] = nil
    }
    public func setMTU(_ name: String, _ mtu: UInt32) throws(NetlinkError) { try modifyLink(name, "set MTU \(mtu) on", { rtnl_link_set_mtu($0, mtu) }) }

    func modifyLink(_ name: String, _ operation: String, _ change: (OpaquePointer?) -> Void) throws(NetlinkError) {
        var orig: OpaquePointer?
        try check(rtnl_link_get_kernel(sock, 0, name, &orig), "find interface", name)
        defer { rtnl_link_put(orig) }
        let delta = rtnl_link_alloc()
        defer { rtnl_link_put(delta) }
        change(delta)
        try check(rtnl_link_change(sock, orig, delta, 0), operation, name)
    }

    /// The alias of an interface, or nil when it has none (or does not exist).
    public func alias(of name: String) -> String? {
        var link: OpaquePointer?
        guard rtnl_link_get_kernel(sock, 0, name, &link) >= 0 else { lastErrno.pointee = 0; return nil }
        defer { rtnl_link_put(link) }
        return rtnl_link_get_ifalias(link).map { String(cString: $0) }
    }

    // MARK: Addresses, routes, rules

    static func nlAddress(_ a: NetlinkAddress) -> OpaquePointer? {
        let addr = a.bytes.withUnsafeBytes { nl_addr_build(a.family, $0.baseAddress, $0.count) }
        if let addr { nl_addr_set_prefixlen(addr, Int32(a.prefixLength)) }
        return addr
    }

    public func addAddress(_ address: NetlinkAddress, to name: String) throws(NetlinkError) {
        let object = "\(address) on \(name)"
        let index = try ifindex(name)
        guard let local = Self.nlAddress(address) else { throw NetlinkError("add address", object, namespace: namespace, errno: ENOMEM) }
        defer { nl_addr_put(local) }
        let addr = rtnl_addr_alloc()
        defer { rtnl_addr_put(addr) }
        rtnl_addr_set_ifindex(addr, index)
        try check(rtnl_addr_set_local(addr, local), "add address", object)
        // An IPv6 address on a fresh veth would wait for duplicate detection before routes can use it.
        if address.family == AF_INET6 { rtnl_addr_set_flags(addr, UInt32(IFA_F_NODAD)) }
        try check(rtnl_addr_add(sock, addr, NLM_F_CREATE | NLM_F_EXCL), "add address", object)
    }

    public func addRoute(_ r: NetlinkRoute) throws(NetlinkError) {
        try withRoute(r, "add route") { rtnl_route_add(sock, $0, NLM_F_CREATE | NLM_F_EXCL) }
    }

    /// Deletes a route (matched by destination, table, metric and next hop); one already gone is no error.
    public func deleteRoute(_ r: NetlinkRoute) throws(NetlinkError) {
        do { try withRoute(r, "delete route") { rtnl_route_delete(sock, $0, 0) } } catch {
            if error.errno != ESRCH && error.errno != ENOENT { throw error }
        }
    }

    private func withRoute(_ r: NetlinkRoute, _ verb: String, _ send: (OpaquePointer?) -> Int32) throws(NetlinkError) {
        let object = r.description
        let dstAddress = r.destination ?? NetlinkAddress(bytes: [UInt8](repeating: 0, count: r.family == AF_INET6 ? 16 : 4), prefixLength: 0)
        guard let dst = Self.nlAddress(dstAddress) else { throw NetlinkError(verb, object, namespace: namespace, errno: ENOMEM) }
        defer { nl_addr_put(dst) }
        let route = rtnl_route_alloc()
        defer { rtnl_route_put(route) }
        rtnl_route_set_family(route, UInt8(r.family))
        try check(rtnl_route_set_dst(route, dst), verb, object)
        rtnl_route_set_table(route, r.table ?? UInt32(RT_TABLE_MAIN.rawValue))
        if let m = r.metric { rtnl_route_set_priority(route, m) }
        rtnl_route_set_scope(route, UInt8((r.scopeLink ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE).rawValue))
        rtnl_route_set_protocol(route, UInt8(RTPROT_STATIC))
        rtnl_route_set_type(route, UInt8(RTN_UNICAST))
        if let s = r.source, let src = Self.nlAddress(s) {
            defer { nl_addr_put(src) }
            try check(rtnl_route_set_pref_src(route, src), verb, object)
        }
        let nh = rtnl_route_nh_alloc()
        if let dev = r.device {
            do { rtnl_route_nh_set_ifindex(nh, try ifindex(dev)) } catch { rtnl_route_nh_free(nh); throw error }
        }
        if let via = r.via, let gw = Self.nlAddress(via) {
            rtnl_route_nh_set_gateway(nh, gw)
            nl_addr_put(gw)
        }
        // The gateway is taken to be on the link, without a lookup (which a blackhole rule of a
        // partition would answer with EINVAL).
        if r.onlink { rtnl_route_nh_set_flags(nh, UInt32(RTNH_F_ONLINK)) }
        rtnl_route_add_nexthop(route, nh)  // the route owns the nexthop now
        try check(send(route), verb, object)
    }

    public func addRule(from source: NetlinkAddress, table: UInt32, priority: UInt32) throws(NetlinkError) {
        let object = "from \(source) table \(table)"
        guard let src = Self.nlAddress(source) else { throw NetlinkError("add rule", object, namespace: namespace, errno: ENOMEM) }
        defer { nl_addr_put(src) }
        let rule = rtnl_rule_alloc()
        defer { rtnl_rule_put(rule) }
        rtnl_rule_set_family(rule, source.family)
        try check(rtnl_rule_set_src(rule, src), "add rule", object)
        rtnl_rule_set_table(rule, table)
        rtnl_rule_set_prio(rule, priority)
        rtnl_rule_set_action(rule, UInt8(FR_ACT_TO_TBL))
        try check(rtnl_rule_add(sock, rule, NLM_F_CREATE | NLM_F_EXCL), "add rule", object)
    }

    /// Deletes that rule; one already gone is no error.
    public func deleteRule(from source: NetlinkAddress, table: UInt32, priority: UInt32) throws(NetlinkError) {
        let object = "from \(source) table \(table)"
        guard let src = Self.nlAddress(source) else { throw NetlinkError("delete rule", object, namespace: namespace, errno: ENOMEM) }
        defer { nl_addr_put(src) }
        let rule = rtnl_rule_alloc()
        defer { rtnl_rule_put(rule) }
        rtnl_rule_set_family(rule, source.family)
        try check(rtnl_rule_set_src(rule, src), "delete rule", object)
        rtnl_rule_set_table(rule, table)
        rtnl_rule_set_prio(rule, priority)
        rtnl_rule_set_action(rule, UInt8(FR_ACT_TO_TBL))
        do { try check(rtnl_rule_delete(sock, rule, 0), "delete rule", object) } catch { if error.errno != ENOENT { throw error } }
    }
}

extension RouteHandle {
    /// A rule that drops every packet to `destination` before any routing table is read (one
    /// side of a partition): `ip rule add to DEST blackhole pref PRIORITY`.
    public func addBlackholeRule(to destination: NetlinkAddress, priority: UInt32) throws(NetlinkError) {
        try blackholeRule(destination, priority, add: true)
    }

    /// Deletes that rule; one already gone is no error.
    public func deleteBlackholeRule(to destination: NetlinkAddress, priority: UInt32) throws(NetlinkError) {
        do { try blackholeRule(destination, priority, add: false) } catch { if error.errno != ENOENT { throw error } }
    }

    private func blackholeRule(_ destination: NetlinkAddress, _ priority: UInt32, add: Bool) throws(NetlinkError) {
        let verb = add ? "add rule" : "delete rule"
        let object = "to \(destination) blackhole pref \(priority)"
        guard let dst = Self.nlAddress(destination) else { throw NetlinkError(verb, object, namespace: namespace, errno: ENOMEM) }
        defer { nl_addr_put(dst) }
        let rule = rtnl_rule_alloc()
        defer { rtnl_rule_put(rule) }
        rtnl_rule_set_family(rule, destination.family)
        try check(rtnl_rule_set_dst(rule, dst), verb, object)
        rtnl_rule_set_prio(rule, priority)
        rtnl_rule_set_action(rule, UInt8(FR_ACT_BLACKHOLE))
        if add { try check(rtnl_rule_add(sock, rule, NLM_F_CREATE | NLM_F_EXCL), verb, object) }
        else { try check(rtnl_rule_delete(sock, rule, 0), verb, object) }
    }

    /// A keyed gretap device between two documentation addresses, only to learn whether the
    /// kernel has gretap (`pathbed doctor`). A bare one would clash with the fallback device
    /// `gretap0` that ip_gre puts in every namespace.
    public func probeGretap(_ name: String) throws(NetlinkError) {
        try createLink(.gretap(LinkAttributes(name: name), nsfd: -1, local: NetlinkAddress(bytes: [192, 0, 2, 1], prefixLength: 32),
                               remote: NetlinkAddress(bytes: [192, 0, 2, 2], prefixLength: 32), key: 1))
    }
}
