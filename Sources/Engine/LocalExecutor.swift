import Foundation
import Netlink
import TopologyModel

/// Applies a host's operations to this machine's kernel through netlink.
///
/// One netlink socket per namespace, opened once; no thread ever runs Swift code inside a lab
/// namespace. Qdiscs are read back after they are set and compared with what was asked.
public final class LocalExecutor {
    private var fds: [String: Int32] = [:]
    private var routeHandles: [String: RouteHandle] = [:]
    private var mptcpHandles: [String: MPTCPHandle] = [:]
    private let root: RouteHandle
    /// Namespaces this executor created, in order (rolled back in reverse on failure).
    public private(set) var createdNamespaces: [String] = []

    public init() throws(NetlinkError) {
        root = try RouteHandle(nsfd: -1, namespace: "the host")
    }

    deinit { for fd in fds.values { close(fd) } }

    func fd(_ ns: String) throws(NetlinkError) -> Int32 {
        if let fd = fds[ns] { return fd }
        let fd = try NetworkNamespace.open(ns)
        fds[ns] = fd
        return fd
    }

    func route(_ ns: String) throws(NetlinkError) -> RouteHandle {
        if let h = routeHandles[ns] { return h }
        let h = try RouteHandle(nsfd: try fd(ns), namespace: ns)
        routeHandles[ns] = h
        return h
    }

    func mptcp(_ ns: String) throws(NetlinkError) -> MPTCPHandle {
        if let h = mptcpHandles[ns] { return h }
        let h = try MPTCPHandle(nsfd: try fd(ns), namespace: ns)
        mptcpHandles[ns] = h
        return h
    }

    /// Qdiscs set but not yet read back, by namespace.
    private var toVerify: [String: [(InterfaceRef, QdiscSpec)]] = [:]

    /// Applies operations in order, then reads every qdisc back (one dump per namespace);
    /// `progress` is called with the count done so far.
    public func apply(_ operations: [Operation], progress: (Int) -> Void = { _ in }) throws(NetlinkError) {
        for (i, op) in operations.enumerated() {
            try apply(op)
            if i % 200 == 199 { progress(i + 1) }
        }
        try verifyQdiscs()
        progress(operations.count)
    }

    public func apply(_ op: Operation) throws(NetlinkError) {
        switch op {
        case let .createNamespace(name):
            try NetworkNamespace.create(name)
            createdNamespaces.append(name)
        case let .setSysctl(ns, key, value):
            try NetworkNamespace.writeSysctl(try fd(ns), namespace: ns, key, value)
        case let .createBridge(r, stp):
            try route(r.namespace).createBridge(r.name, stp: stp)
        case let .createVeth(a, b, mtu):
            try root.createVeth(a.name, nsfd: try fd(a.namespace), peer: b.name, peerNsfd: try fd(b.namespace), mtu: UInt32(mtu), object: "\(a) <-> \(b)")
        case let .enslave(r, bridge):
            try route(r.namespace).enslave(r.name, to: bridge)
        case let .addAddress(r, address):
            try route(r.namespace).addAddress(address, to: r.name)
        case let .setUp(r):
            try route(r.namespace).setUp(r.name)
        case let .setQdisc(r, q):
            try setQdisc(r, q)
        case let .addRoute(ns, dest, via, dev, src, metric, table, scopeLink):
            try route(ns).addRoute(.init(destination: dest, via: via, device: dev, source: src, metric: metric.map(UInt32.init),
                                         table: table.map(UInt32.init), scopeLink: scopeLink))
        case let .addRule(ns, from, table, priority):
            try route(ns).addRule(from: from, table: UInt32(table), priority: UInt32(priority))
        case let .setMPTCPLimits(ns, subflows, addAddr):
            try mptcp(ns).setLimits(subflows: subflows.map(UInt32.init), addAddrAccepted: addAddr.map(UInt32.init))
        case let .addMPTCPEndpoint(ns, address, device, id, flags):
            guard let ip = IPAddress(address) else { throw NetlinkError("add MPTCP endpoint", address, namespace: ns, errno: EINVAL) }
            let index = try route(ns).ifindex(device)
            try mptcp(ns).addEndpoint(address: ip.bytes, ifindex: index, id: UInt8(id), flags: .init(names: flags),
                                      label: "\(address) dev \(device) id \(id) \(flags.joined(separator: " "))")
        case .createGretap, .setUnderlayMTU:
            throw NetlinkError("apply", op.command, namespace: "the host", errno: EOPNOTSUPP,
                               hint: "links across hosts need the multi-host executor (a later release)")
        }
    }

    func setQdisc(_ r: InterfaceRef, _ q: QdiscSpec) throws(NetlinkError) {
        let h = try route(r.namespace)
        if let n = q.netem {
            var p = RouteHandle.NetemParameters()
            p.delayMicroseconds = Int(n.delayMicroseconds); p.jitterMicroseconds = Int(n.jitterMicroseconds)
            p.delayCorrelation = n.delayCorrelation; p.distribution = n.distribution
            p.loss = n.loss; p.lossCorrelation = n.lossCorrelation
            p.duplicate = n.duplicate; p.corrupt = n.corrupt
            p.reorder = n.reorder; p.reorderCorrelation = n.reorderCorrelation; p.gap = n.gap
            p.limitPackets = n.limitPackets
            if let rate = q.rateBitsPerSecond {
                try h.setHTB(r.name, rateBytes: rate / 8, burst: q.burstBytes ?? 3028)
            }
            try h.setNetem(r.name, p, belowHTB: q.rateBitsPerSecond != nil)
        } else if let rate = q.rateBitsPerSecond {
            try h.setTBF(r.name, rateBytes: Int(rate / 8), burst: q.burstBytes ?? 3028, limitBytes: q.limitBytes ?? 100_000)
        }
        toVerify[r.namespace, default: []].append((r, q))
    }

    /// Reads the qdiscs back from the kernel and compares them with what was asked.
    public func verifyQdiscs() throws(NetlinkError) {
        for (ns, items) in toVerify.sorted(by: { $0.key < $1.key }) {
            let h = try route(ns)
            let all = try h.qdiscs()
            for (r, q) in items { try readBack(r, q, h, all) }
        }
        toVerify.removeAll()
    }

    /// Compares one interface's qdiscs (from a dump of its namespace) with the spec.
    func readBack(_ r: InterfaceRef, _ q: QdiscSpec, _ h: RouteHandle, _ all: [QdiscInfo]) throws(NetlinkError) {
        let index = try h.ifindex(r.name)
        let here = all.filter { $0.interfaceIndex == index }
        func fail(_ what: String) -> NetlinkError {
            NetlinkError("read back qdisc", "on \(r.name) (profile \(q.profile))", namespace: r.namespace, errno: EIO,
                         hint: "the kernel reports \(what); please report this")
        }
        guard let rootQdisc = here.first(where: { $0.parent == 0xFFFF_FFFF }) else { throw fail("no root qdisc") }
        let expectedRoot = q.kinds.first ?? ""
        guard rootQdisc.kind == expectedRoot else { throw fail("root qdisc \(rootQdisc.kind), not \(expectedRoot)") }
        if expectedRoot == "tbf", let want = q.rateBitsPerSecond, let got = rootQdisc.rateBytesPerSecond, UInt64(got) != want / 8 {
            throw fail("rate \(got * 8) bit/s, not \(want)")
        }
        if expectedRoot == "htb", let want = q.rateBitsPerSecond, let got = try h.htbRate(r.name), got != want / 8 {
            throw fail("htb rate \(got * 8) bit/s, not \(want)")
        }
        if let n = q.netem {
            guard let netem = here.first(where: { $0.kind == "netem" }) else { throw fail("no netem qdisc") }
            if let d = netem.delayMicroseconds, abs(d - Int(n.delayMicroseconds)) > 1 { throw fail("netem delay \(d)us, not \(n.delayMicroseconds)us") }
        }
    }

    /// Deletes what this executor created, newest first. Everything else lived inside those namespaces.
    public func rollBack() {
        routeHandles.removeAll(); mptcpHandles.removeAll(); toVerify.removeAll()
        for fd in fds.values { close(fd) }
        fds.removeAll()
        for ns in createdNamespaces.reversed() { try? NetworkNamespace.delete(ns) }
        createdNamespaces.removeAll()
    }
}
