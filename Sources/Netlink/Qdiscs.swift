import CNetlink
import CShims
import NetlinkTypes
#if canImport(Glibc)
import Glibc
#endif

/// Qdiscs as vishvananda/netlink offers them: add, change in place, replace, delete, list.
///
/// Faults and reconcile change a running profile with `.change` (or `.replace` when the kind
/// changes): delete-and-add would leave traffic unshaped for a moment.
extension RouteHandle {
    // The tree's handles, by its major number: 1 (root 1:, class 1:1, netem 10:) or 2 (root 2:,
    // class 2:1, netem 20:). A change of kind grafts a new root of the other major in one step:
    // the kernel will not turn a root of one kind into another at the same handle (EOPNOTSUPP).
    static func rootHandle(_ major: UInt32) -> UInt32 { major << 16 }
    static func htbClass(_ major: UInt32) -> UInt32 { major << 16 | 1 }
    static func netemBelowHTB(_ major: UInt32) -> UInt32 { (major * 0x10) << 16 }

    /// libnl takes probabilities as fractions of 2^32 - 1, as the kernel does.
    static func probability(_ percent: Double) -> Int32 {
        let clamped = min(max(percent, 0), 100)
        return Int32(bitPattern: UInt32((clamped / 100 * Double(UInt32.max)).rounded()))
    }

    static func percent(_ probability: Int32) -> Double { Double(UInt32(bitPattern: probability)) / Double(UInt32.max) * 100 }

    /// Sets the shaping of `name`'s egress.
    public func setShaping(_ name: String, _ shaping: Shaping, mode: QdiscMode = .add) throws(NetlinkError) {
        let index = try ifindex(name)
        // What is there now matters only to a change or a replace (`up` adds to a new interface).
        let current = mode == .add ? nil : try rootQdisc(index)
        let currentMajor = current.map { $0.handle >> 16 }.flatMap { $0 == 1 || $0 == 2 ? $0 : nil }
        var major: UInt32 = currentMajor ?? 1
        if mode == .replace, let c = current, c.kind != shaping.rootKind.rawValue { major = currentMajor == 1 ? 2 : 1 }
        switch shaping {
        case let .tbf(rateBytes, burst, limit):
            let q = try qdisc(index, name, kind: "tbf", parent: TC_H_ROOT, handle: Self.rootHandle(major))
            defer { rtnl_qdisc_put(q) }
            rtnl_qdisc_tbf_set_limit(q, Int32(clamping: limit))
            rtnl_qdisc_tbf_set_rate(q, Int32(clamping: rateBytes), Int32(clamping: burst), 0)
            try send(q, mode, "tbf", name)
        case let .htb(rateBytes, burst, netem):
            // The root's one parameter, its default class, never changes: a change leaves it as it
            // is (the kernel refuses to change an htb root with EINVAL) and changes the class and
            // the netem below. A change of kind replaces the root first.
            if mode != .change {
                let q = try qdisc(index, name, kind: "htb", parent: TC_H_ROOT, handle: Self.rootHandle(major))
                defer { rtnl_qdisc_put(q) }
                _ = rtnl_htb_set_defcls(q, Self.htbClass(major))
                do { try send(q, mode, "htb", name) } catch {
                    // A replace that finds an htb root already there: it stays, as for a change.
                    guard mode == .replace, error.errno == EINVAL else { throw error }
                    lastErrno.pointee = 0
                }
            }
            let c = rtnl_class_alloc()
            defer { rtnl_class_put(c) }
            rtnl_tc_set_ifindex(c, index)
            rtnl_tc_set_parent(c, Self.rootHandle(major))
            rtnl_tc_set_handle(c, Self.htbClass(major))
            try check(rtnl_tc_set_kind(c, "htb"), "set class htb", "1:1 on \(name)")
            _ = rtnl_htb_set_rate64(c, rateBytes)
            _ = rtnl_htb_set_ceil64(c, rateBytes)
            _ = rtnl_htb_set_rbuffer(c, burst)
            _ = rtnl_htb_set_cbuffer(c, burst)
            // Without NLM_F_EXCL the kernel changes an existing class in place (and creates a missing one).
            try check(rtnl_class_add(sock, c, NLM_F_CREATE | (mode == .add ? NLM_F_EXCL : 0)), "set class htb", "1:1 on \(name)")
            if let netem {
                try setNetem(index, name, netem, parent: Self.htbClass(major), handle: Self.netemBelowHTB(major), mode: mode)
            } else if mode != .add {
                // The class had netem below it before; now it shapes by rate alone.
                let old = rtnl_qdisc_alloc()
                defer { rtnl_qdisc_put(old) }
                rtnl_tc_set_ifindex(old, index)
                rtnl_tc_set_parent(old, Self.htbClass(major))
                rtnl_tc_set_handle(old, Self.netemBelowHTB(major))
                _ = rtnl_qdisc_delete(sock, old)
                lastErrno.pointee = 0
            }
        case let .netem(p):
            try setNetem(index, name, p, parent: TC_H_ROOT, handle: Self.rootHandle(major), mode: mode)
        }
    }

    /// The root qdisc of an interface (its kind and handle), if it has one of its own.
    func rootQdisc(_ index: Int32) throws(NetlinkError) -> QdiscInfo? {
        try qdiscs().first { $0.interfaceIndex == index && $0.parent == TC_H_ROOT && $0.kind != "noqueue" }
    }

    /// Removes the root qdisc of `name` (and everything below it): the interface is unshaped.
    public func deleteShaping(_ name: String) throws(NetlinkError) {
        let index = try ifindex(name)
        let q = rtnl_qdisc_alloc()
        defer { rtnl_qdisc_put(q) }
        rtnl_tc_set_ifindex(q, index)
        rtnl_tc_set_parent(q, TC_H_ROOT)
        rtnl_tc_set_handle(q, (try rootQdisc(index))?.handle ?? Self.rootHandle(1))
        try check(rtnl_qdisc_delete(sock, q), "delete qdisc", "root of \(name)")
    }

    func qdisc(_ index: Int32, _ name: String, kind: String, parent: UInt32, handle: UInt32) throws(NetlinkError) -> OpaquePointer? {
        let q = rtnl_qdisc_alloc()
        rtnl_tc_set_ifindex(q, index)
        rtnl_tc_set_parent(q, parent)
        rtnl_tc_set_handle(q, handle)
        let r = rtnl_tc_set_kind(q, kind)
        if r < 0 { rtnl_qdisc_put(q) }
        try check(r, "set qdisc \(kind)", "on \(name)", hint: kind == "netem" ? "netem (sch_netem) is needed for delay and loss" : nil)
        return q
    }

    func send(_ q: OpaquePointer?, _ mode: QdiscMode, _ kind: String, _ name: String) throws(NetlinkError) {
        let hint = kind == "netem" ? "netem (sch_netem) is needed for delay and loss" : nil
        switch mode {
        case .add: try check(rtnl_qdisc_add(sock, q, NLM_F_CREATE | NLM_F_EXCL), "add qdisc \(kind)", "on \(name)", hint: hint)
        case .replace: try check(rtnl_qdisc_add(sock, q, NLM_F_CREATE | NLM_F_REPLACE), "replace qdisc \(kind)", "on \(name)", hint: hint)
        case .change: try check(rtnl_qdisc_update(sock, q, q, 0), "change qdisc \(kind)", "on \(name)", hint: hint)
        }
    }

    func setNetem(_ index: Int32, _ name: String, _ p: NetemParameters, parent: UInt32, handle: UInt32, mode: QdiscMode) throws(NetlinkError) {
        // libnl 3.7 has no Gilbert-Elliott loss: refused rather than set without it.
        if p.gemodel != nil {
            throw NetlinkError("set netem loss gemodel", "on \(name)", namespace: namespace, errno: EOPNOTSUPP,
                               hint: "Gilbert-Elliott loss cannot be set through libnl 3.7 yet; use random loss with a correlation (`loss: {percent: 1%, correlation: 25%}`) for bursts")
        }
        let q = try qdisc(index, name, kind: "netem", parent: parent, handle: handle)
        defer { rtnl_qdisc_put(q) }
        rtnl_netem_set_limit(q, Int32(clamping: p.limitPackets))
        rtnl_netem_set_delay(q, Int32(clamping: p.delayMicroseconds))
        rtnl_netem_set_jitter(q, Int32(clamping: p.jitterMicroseconds))
        if let c = p.delayCorrelation { rtnl_netem_set_delay_correlation(q, Self.probability(c)) }
        if let d = p.distribution { try check(rtnl_netem_set_delay_distribution(q, d), "load netem distribution", d) }
        rtnl_netem_set_loss(q, Self.probability(p.loss ?? 0))
        if let c = p.lossCorrelation { rtnl_netem_set_loss_correlation(q, Self.probability(c)) }
        if let d = p.duplicate { rtnl_netem_set_duplicate(q, Self.probability(d)) }
        if let c = p.corrupt { rtnl_netem_set_corruption_probability(q, Self.probability(c)) }
        if let r = p.reorder { rtnl_netem_set_reorder_probability(q, Self.probability(r)) }
        if let c = p.reorderCorrelation { rtnl_netem_set_reorder_correlation(q, Self.probability(c)) }
        if let g = p.gap { rtnl_netem_set_gap(q, Int32(clamping: g)) }
        // netem below htb is created with the class on `add`, and replaced (it may be new) otherwise.
        try send(q, mode == .change && parent != TC_H_ROOT ? .replace : mode, "netem", name)
    }

    /// Every qdisc in this namespace, as the kernel reports it.
    public func qdiscs() throws(NetlinkError) -> [QdiscInfo] {
        var cache: OpaquePointer?
        try check(rtnl_qdisc_alloc_cache(sock, &cache), "list qdiscs", "")
        defer { nl_cache_free(cache) }
        var out: [QdiscInfo] = []
        var obj = nl_cache_get_first(cache)
        while let tc = obj {
            let kind = rtnl_tc_get_kind(tc).map { String(cString: $0) } ?? "?"
            var info = QdiscInfo(interfaceIndex: rtnl_tc_get_ifindex(tc), kind: kind, handle: rtnl_tc_get_handle(tc), parent: rtnl_tc_get_parent(tc))
            info.drops = rtnl_tc_get_stat(tc, RTNL_TC_DROPS)
            info.overlimits = rtnl_tc_get_stat(tc, RTNL_TC_OVERLIMITS)
            info.backlogBytes = rtnl_tc_get_stat(tc, RTNL_TC_BACKLOG)
            info.backlogPackets = rtnl_tc_get_stat(tc, RTNL_TC_QLEN)
            if kind == "tbf" {
                info.rateBytesPerSecond = UInt64(UInt32(bitPattern: rtnl_qdisc_tbf_get_rate(tc)))
                info.limit = UInt32(bitPattern: rtnl_qdisc_tbf_get_limit(tc))
            } else if kind == "netem" {
                info.delayMicroseconds = UInt32(bitPattern: rtnl_netem_get_delay(tc))
                info.jitterMicroseconds = UInt32(bitPattern: rtnl_netem_get_jitter(tc))
                info.lossPercent = Self.percent(rtnl_netem_get_loss(tc))
                info.limit = UInt32(bitPattern: rtnl_netem_get_limit(tc))
            }
            out.append(info)
            obj = nl_cache_get_next(tc)
        }
        return out
    }

    /// The htb class 1:1 rate on an interface, in bytes per second.
    public func htbRate(_ name: String) throws(NetlinkError) -> UInt64? {
        let index = try ifindex(name)
        var cache: OpaquePointer?
        try check(rtnl_class_alloc_cache(sock, index, &cache), "list classes", "on \(name)")
        defer { nl_cache_free(cache) }
        let major = (try rootQdisc(index)).map { $0.handle >> 16 } ?? 1
        guard let c = rtnl_class_get(cache, index, Self.htbClass(major)) else { return nil }
        defer { rtnl_class_put(c) }
        var rate: UInt64 = 0
        return rtnl_htb_get_rate64(c, &rate) == 0 ? rate : nil
    }
}
