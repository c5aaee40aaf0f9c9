import Foundation
import Netlink
import NetlinkTypes
import Planning
import TopologyModel

/// Applies a host's operations to this machine's kernel through netlink.
///
/// One netlink socket per namespace, opened when first needed and kept (at most
/// `openNamespaceLimit` namespaces' at once: a lab of 10,000 nodes would otherwise need 20,000
/// descriptors); no thread ever runs Swift code inside a lab namespace. Qdiscs are read back
/// after they are set and compared with what was asked.
public final class LocalExecutor: HostExecutor {
    public let host: String
    private var fds: [String: Int32] = [:]
    private var routeHandles: [String: RouteHandle] = [:]
    private var mptcpHandles: [String: MPTCPHandle] = [:]
    private var rootHandle: RouteHandle?
    /// Namespaces this executor created, in order (rolled back in reverse on failure).
    public private(set) var createdNamespaces: [String] = []
    /// Host interfaces whose MTU `apply` raised, with the MTU they had.
    public private(set) var changedMTUs: [MTUChange] = []
    /// The lab whose operations `apply` is making (from its namespaces).
    var applyingLab: String?
    /// Qdiscs set but not yet read back, by namespace.
    private var toVerify: [String: [(InterfaceRef, QdiscSpec)]] = [:]

    /// Also stops the commands `run` runs (besides a signal), e.g. at the end of a run.
    let stopWhen: @Sendable () -> Bool

    public init(host: String = "local", stopWhen: @escaping @Sendable () -> Bool = { false }) { self.host = host; self.stopWhen = stopWhen }

    // MARK: The connection: this machine, in process

    public func connect() {}
    public func close() { closeAll() }
    public var connectedInfo: HostInfo? { nil }
    public var clockOffsetNanoseconds: Int64 { 0 }
    public var clockUncertaintyNanoseconds: UInt64 { 0 }
    public func sideConnection(stop: @escaping @Sendable () -> Bool) -> HostExecutor { LocalExecutor(host: host, stopWhen: stop) }

    deinit { closeAll() }

    func closeAll() {
        routeHandles.removeAll(); mptcpHandles.removeAll(); rootHandle = nil
        for fd in fds.values { Glibc.close(fd) }
        fds.removeAll()
        lastUse.removeAll()
        owned.removeAll()
    }

    /// Namespaces known to be a lab's: named and tagged as one (checked once per executor).
    private var owned: Set<String> = []

    /// Refuses to act on a namespace no lab made: every change this executor makes is in a
    /// namespace named `pb.LAB` or `pb.LAB.NODE` whose loopback carries that lab's tag, as `down`
    /// requires. An agent is told what to change; it changes only what is a lab's.
    func requireOwned(_ ns: String) throws(NetlinkError) {
        if owned.contains(ns) { return }
        guard let lab = Ownership.lab(ofNamespace: ns), NetworkNamespace.list().contains(ns),
              (try? route(ns).alias(of: "lo")) == Ownership.namespaceTag(lab: lab) else {
            throw NetlinkError("enter or change", "the namespace", namespace: ns, errno: EPERM,
                               hint: "no Pathbed lab made it (not named pb.LAB or pb.LAB.NODE, or no lab's tag on its loopback); Pathbed never touches such a namespace")
        }
        owned.insert(ns)
    }

    func root() throws(NetlinkError) -> RouteHandle {
        if let h = rootHandle { return h }
        let h = try RouteHandle(nsfd: -1, namespace: "the host")
        rootHandle = h
        return h
    }

    func fd(_ ns: String) throws(NetlinkError) -> Int32 {
        touch(ns)
        if let fd = fds[ns] { return fd }
        let fd = try NetworkNamespace.open(ns)
        fds[ns] = fd
        return fd
    }

    func route(_ ns: String) throws(NetlinkError) -> RouteHandle {
        touch(ns)
        if let h = routeHandles[ns] { return h }
        let h = try RouteHandle(nsfd: try fd(ns), namespace: ns)
        routeHandles[ns] = h
        return h
    }

    func mptcp(_ ns: String) throws(NetlinkError) -> MPTCPHandle {
        touch(ns)
        if let h = mptcpHandles[ns] { return h }
        let h = try MPTCPHandle(nsfd: try fd(ns), namespace: ns)
        mptcpHandles[ns] = h
        return h
    }

    /// Namespaces whose handles are kept open at most (each holds up to three descriptors).
    static let openNamespaceLimit = 2048
    private var uses: UInt64 = 0
    private var lastUse: [String: UInt64] = [:]

    /// Marks `ns` as used now; past the limit, the handles used longest ago are closed (a quarter
    /// of them at once, so that a plan that walks every namespace reopens each at most once a phase).
    private func touch(_ ns: String) {
        uses += 1
        lastUse[ns] = uses
        guard lastUse.count > Self.openNamespaceLimit else { return }
        for (old, _) in lastUse.sorted(by: { $0.value < $1.value }).prefix(Self.openNamespaceLimit / 4) where old != ns {
            routeHandles[old] = nil
            mptcpHandles[old] = nil
            if let fd = fds.removeValue(forKey: old) { Glibc.close(fd) }
            lastUse[old] = nil
        }
    }

    public func capabilities(sysctls: [String]) -> Capabilities { CapabilityProbe.run(sysctls: sysctls) }

    // MARK: Apply

    public func apply(_ operations: [LabOperation], progress: (Int) -> Void, interrupted: () -> Int32) throws {
        // The lab these changes are for: a raised underlay MTU is held in its name.
        for op in operations { if case let .createNamespace(_, lab) = op { applyingLab = lab; break } }
        for (i, op) in operations.enumerated() {
            let signal = interrupted()
            if signal != 0 { throw Interrupted(signal: signal) }
            try apply(op)
            if i % 200 == 199 { progress(i + 1) }
        }
        try verifyQdiscs()
        progress(operations.count)
    }

    public func apply(_ op: LabOperation) throws(NetlinkError) {
        switch op {
        case .createNamespace, .setUnderlayMTU: break
        case let .createVeth(a, b, _, _): try requireOwned(a.namespace); try requireOwned(b.namespace)
        default: if let ns = op.namespace { try requireOwned(ns) }
        }
        switch op {
        case let .createNamespace(name, lab):
            guard Ownership.isNamed(name, lab: lab) else {
                throw NetlinkError("create namespace", name, namespace: "/run/netns", errno: EINVAL, hint: "a lab's namespaces are named pb.\(lab) or pb.\(lab).NODE")
            }
            // Tagged before it is named: a namespace without the tag is never removed by `down`.
            try NetworkNamespace.create(name, tag: Ownership.namespaceTag(lab: lab))
            createdNamespaces.append(name)
            owned.insert(name)
        case let .setSysctl(ns, key, value):
            try NetworkNamespace.writeSysctl(try fd(ns), namespace: ns, key, value)
        case let .disableMPTCP(ns):
            let f = try fd(ns)
            if NetworkNamespace.readSysctl(f, "net.mptcp.enabled") != nil { try NetworkNamespace.writeSysctl(f, namespace: ns, "net.mptcp.enabled", "0") }
        case let .createBridge(r, stp, group):
            try route(r.namespace).createLink(.bridge(LinkAttributes(name: r.name, group: group), stp: stp))
        case let .createVeth(a, b, mtu, group):
            // Made from inside a's namespace: kernels before 6.2 look a new link's name up in the
            // namespace of the socket that asks, so asking from the host's would clash with its eth0.
            try route(a.namespace).createLink(.veth(LinkAttributes(name: a.name, mtu: mtu, group: group), nsfd: -1,
                                                    peer: LinkAttributes(name: b.name, mtu: mtu, group: group), peerNsfd: try fd(b.namespace)))
            try route(b.namespace).forget(b.name)
        case let .createGretap(r, local, remote, key, mtu, group):
            try createTunnel(.gretap(LinkAttributes(name: Self.temporaryTunnelName(key), mtu: mtu, group: group), nsfd: -1,
                                     local: Self.netlink(local), remote: Self.netlink(remote), key: key), into: r)
        case let .createVxlan(r, local, remote, vni, mtu, group):
            // Its UDP socket stays in the host's namespace, the device goes to the node's.
            try createTunnel(.vxlan(LinkAttributes(name: String(format: "pbvx%08x", vni), mtu: mtu, group: group), local: Self.netlink(local),
                                    remote: Self.netlink(remote), vni: vni, port: Topology.vxlanPort), into: r)
        case let .enslave(r, bridge):
            try route(r.namespace).enslave(r.name, to: bridge)
        case let .addAddress(r, address):
            try route(r.namespace).addAddress(Self.netlink(address), to: r.name)
        case let .setUp(r):
            do { try route(r.namespace).setUp(r.name) } catch where error.errno == EADDRINUSE {
                // A VXLAN device opens its UDP socket when it goes up.
                throw NetlinkError("set up", r.name, namespace: r.namespace, errno: EADDRINUSE,
                                   hint: "UDP port \(Topology.vxlanPort) (VXLAN) is taken on this host by another VXLAN device or program (`ss -ulpn sport = :\(Topology.vxlanPort)`, `ip -d link show type vxlan`); free it, or carry this lab's links with `tunnel: gretap`")
            }
        case let .setQdisc(r, q):
            try setQdisc(r, q, mode: .add)
        case let .addRoute(ns, r):
            try route(ns).addRoute(Self.netlink(r))
        case let .addRule(ns, from, table, priority):
            try route(ns).addRule(from: Self.netlink(from), table: table, priority: priority)
        case let .setMPTCPLimits(ns, subflows, addAddr):
            try mptcp(ns).setLimits(subflows: subflows, addAddrAccepted: addAddr)
        case let .addMPTCPEndpoint(ns, address, device, id, flags):
            let index = try route(ns).ifindex(device)
            try mptcp(ns).addEndpoint(address: address.bytes, ifindex: index, id: id, flags: .init(names: flags.map(\.rawValue)),
                                      label: "\(address) dev \(device) id \(id)")
        case let .deleteRoute(ns, r):
            try route(ns).deleteRoute(Self.netlink(r))
        case let .deleteRule(ns, from, table, priority):
            try route(ns).deleteRule(from: Self.netlink(from), table: table, priority: priority)
        case let .deleteMPTCPEndpoint(ns, id):
            do { try mptcp(ns).deleteEndpoint(id: id) } catch { if error.errno != ENOENT && error.errno != EINVAL { throw error } }
        case let .awaitGone(r):
            try awaitGone(r)
        case let .setUnderlayMTU(interface, address, mtu):
            guard MTURecords.range.contains(mtu) else {
                throw NetlinkError("raise the underlay MTU", "to \(mtu)", namespace: "the host", errno: EINVAL,
                                   hint: "an MTU is from \(MTURecords.range.lowerBound) to \(MTURecords.range.upperBound)")
            }
            guard let name = interface ?? address.flatMap(Self.interface(holding:)) else {
                throw NetlinkError("raise the underlay MTU", "to \(mtu)", namespace: "the host", errno: EADDRNOTAVAIL,
                                   hint: address.map { "no interface of this host has the underlay address \($0); give the host's real address as `underlay:`, or name the interface with `interface:`" }
                                       ?? "name the underlay interface with `interface:` under the host")
            }
            let h = try root()
            guard let before = try h.links().first(where: { $0.name == name }) else {
                throw NetlinkError("raise the underlay MTU", "of \(name)", namespace: "the host", errno: ENODEV)
            }
            // Never on the loopback, and raised only: an underlay already large enough is left as it is.
            if name == "lo" {
                throw NetlinkError("raise the underlay MTU", "of \(name) to \(mtu)", namespace: "the host", errno: EINVAL,
                                   hint: "the loopback is no tunnel's underlay; name the interface that carries the tunnels")
            }
            // Recorded on this host before the change, with the lab that needs it: only a recorded
            // change is undone, and only when the last lab that needs it goes. A lab over an
            // underlay another lab raised holds it too, so that the other's `down` leaves it raised.
            let held = MTURecords.recorded(name)
            if before.mtu < mtu || held != nil {
                do { try MTURecords.hold(name, before: before.mtu, lab: applyingLab ?? "") } catch {
                    throw NetlinkError("raise the underlay MTU", "of \(name)", namespace: "the host", errno: EACCES, hint: error.message)
                }
                if before.mtu < mtu { try h.setMTU(name, mtu) }
                changedMTUs.append(MTUChange(interface: name, mtu: held ?? before.mtu))
            }
        }
    }

    /// A tunnel's underlay is the namespace it is made in: it is made in the host's under a name
    /// of the lab's own (`spec`'s, with its group), then moved into its node's namespace and
    /// renamed. EEXIST with no device of that name: a tunnel of the same ends and key (or VNI)
    /// that a lab just removed is still held by the kernel (it frees a deleted namespace's
    /// devices in the background, seconds later in an emulated VM): waited for, at most 15 s.
    func createTunnel(_ spec: LinkSpec, into r: InterfaceRef) throws(NetlinkError) {
        let h = try root()
        let temporary = spec.attributes.name
        let deadline = monotonicNanoseconds() + 15_000_000_000
        while true {
            do { try h.createLink(spec); break } catch where error.errno == EEXIST && (try? h.exists(temporary)) == false && monotonicNanoseconds() < deadline {
                usleep(200_000)
            }
        }
        do { try h.move(temporary, toNamespace: try fd(r.namespace), as: r.name) } catch {
            try? h.deleteLink(temporary)
            throw error
        }
    }

    /// Waits (at most 30 s) until `r` no longer exists: the kernel frees a removed namespace's
    /// devices, and their peers elsewhere, after the deletion has returned.
    func awaitGone(_ r: InterfaceRef) throws(NetlinkError) {
        let h = try route(r.namespace)
        let deadline = monotonicNanoseconds() + 30_000_000_000
        while true {
            if try !h.exists(r.name) { return }
            guard monotonicNanoseconds() < deadline else {
                throw NetlinkError("wait for the kernel to free", r.name, namespace: r.namespace, errno: EBUSY,
                                   hint: "the kernel has not freed it 30 s after its namespace's other end was removed; run `pathbed up` again")
            }
            usleep(20_000)
        }
    }

    /// The host interface that has `address` (from getifaddrs, in this namespace).
    static func interface(holding address: IPAddress) -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var p = list
        while let a = p {
            defer { p = a.pointee.ifa_next }
            guard let sa = a.pointee.ifa_addr else { continue }
            var bytes: [UInt8] = []
            if sa.pointee.sa_family == UInt16(AF_INET) {
                bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { s in withUnsafeBytes(of: s.pointee.sin_addr) { Array($0) } }
            } else if sa.pointee.sa_family == UInt16(AF_INET6) {
                bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { s in withUnsafeBytes(of: s.pointee.sin6_addr) { Array($0) } }
            }
            if bytes == address.bytes { return String(cString: a.pointee.ifa_name) }
        }
        return nil
    }

    static let fallbackDevices: Set<String> = ["gre0", "gretap0", "erspan0", "ip6gre0", "ip6tnl0", "sit0", "tunl0", "ip_vti0", "ip6_vti0"]

    /// The name a lab's tunnel has in the host's namespace for the moment between its creation
    /// and its move; `down` removes any left there (by name and the lab's group).
    static func temporaryTunnelName(_ key: UInt32) -> String { String(format: "pbgt%08x", key) }

    static func netlink(_ a: IPAddress) -> NetlinkAddress { NetlinkAddress(bytes: a.bytes, prefixLength: a.bitWidth) }
    static func netlink(_ n: IPNetwork) -> NetlinkAddress { NetlinkAddress(bytes: n.address.bytes, prefixLength: n.prefixLength) }
    static func netlink(_ r: RouteSpec) -> NetlinkRoute {
        NetlinkRoute(family: r.family == .ipv6 ? AF_INET6 : AF_INET, destination: r.destination.map(netlink), via: r.via.map(netlink),
                     device: r.device, source: r.source.map(netlink), metric: r.metric, table: r.table, scopeLink: r.scopeLink)
    }

    /// Sets, changes in place or replaces a profile's qdiscs, and queues them for read-back.
    public func setQdisc(_ r: InterfaceRef, _ q: QdiscSpec, mode: QdiscMode) throws(NetlinkError) {
        try route(r.namespace).setShaping(r.name, q.shaping, mode: mode)
        toVerify[r.namespace, default: []].append((r, q))
    }

    /// Removes a profile's qdiscs: the interface goes back to the kernel's default queue.
    public func clearQdisc(_ r: InterfaceRef) throws(NetlinkError) {
        try route(r.namespace).deleteShaping(r.name)
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

    /// Compares one interface's qdiscs (from a dump of its namespace) with every field the spec sets.
    func readBack(_ r: InterfaceRef, _ q: QdiscSpec, _ h: RouteHandle, _ all: [QdiscInfo]) throws(NetlinkError) {
        let index = try h.ifindex(r.name)
        let here = all.filter { $0.interfaceIndex == index }
        func fail(_ what: String) -> NetlinkError {
            NetlinkError("read back qdisc", "on \(r.name) (profile \(q.profile))", namespace: r.namespace, errno: EIO,
                         hint: "the kernel reports \(what); please report this")
        }
        guard let rootQdisc = here.first(where: { $0.parent == 0xFFFF_FFFF }) else { throw fail("no root qdisc") }
        let expectedRoot = q.shaping.rootKind.rawValue
        guard rootQdisc.kind == expectedRoot else { throw fail("root qdisc \(rootQdisc.kind), not \(expectedRoot)") }
        switch q.shaping {
        case let .tbf(rateBytes, _, limitBytes):
            if let got = rootQdisc.rateBytesPerSecond, got != rateBytes { throw fail("rate \(got * 8) bit/s, not \(rateBytes * 8)") }
            if let got = rootQdisc.limit, got != limitBytes { throw fail("tbf limit \(got) bytes, not \(limitBytes)") }
        case let .htb(rateBytes, _, _):
            if let got = try h.htbRate(r.name), got != rateBytes { throw fail("htb rate \(got * 8) bit/s, not \(rateBytes * 8)") }
        case .netem:
            break
        }
        if let n = q.netem {
            guard let netem = here.first(where: { $0.kind == "netem" }) else { throw fail("no netem qdisc") }
            // The kernel keeps times in its clock's ticks: allow one microsecond of rounding.
            if let d = netem.delayMicroseconds, abs(Int64(d) - Int64(n.delayMicroseconds)) > 1 { throw fail("netem delay \(d)us, not \(n.delayMicroseconds)us") }
            if let j = netem.jitterMicroseconds, abs(Int64(j) - Int64(n.jitterMicroseconds)) > 1 { throw fail("netem jitter \(j)us, not \(n.jitterMicroseconds)us") }
            if let l = netem.lossPercent, abs(l - (n.loss ?? 0)) > 0.0001 { throw fail("netem loss \(l)%, not \(n.loss ?? 0)%") }
            if let limit = netem.limit, limit != n.limitPackets { throw fail("netem limit \(limit), not \(n.limitPackets)") }
        }
    }

    /// Deletes what this executor created, newest first. Everything else lived inside those namespaces.
    public func rollBack() -> [String] {
        var failures: [String] = []
        toVerify.removeAll()
        if let h = try? root() {
            for c in changedMTUs.reversed() {
                // Put back (and the record dropped) only when no other lab holds it.
                guard let back = MTURecords.release(c.interface, lab: applyingLab ?? "").restore else { continue }
                do { try h.setMTU(c.interface, back) } catch { failures.append("\(error)") }
            }
        }
        changedMTUs.removeAll()
        closeAll()
        for ns in createdNamespaces.reversed() {
            do { try NetworkNamespace.delete(ns) } catch { failures.append("\(error)") }
        }
        createdNamespaces.removeAll()
        return failures
    }

    // MARK: Changes to a running lab

    public func removeNamespaces(_ names: [String]) throws {
        for ns in names { try requireOwned(ns) }
        closeAll()
        _ = ProcessStopper.stop(in: names)
        for ns in names { try NetworkNamespace.delete(ns) }
    }

    public func deleteLink(_ link: InterfaceRef) throws {
        try requireOwned(link.namespace)
        try route(link.namespace).deleteLink(link.name)
    }

    public func setProfile(_ link: InterfaceRef, from old: QdiscSpec?, to new: QdiscSpec?) throws {
        try requireOwned(link.namespace)
        try setProfile(link, from: old, to: new, replace: false)
    }

    /// Switches `link` from `old` to `new` shaping (nil: unshaped). With `replace`, whatever is on
    /// the link now is replaced (`old` is not trusted: a trace may have stopped between rows).
    func setProfile(_ link: InterfaceRef, from old: QdiscSpec?, to new: QdiscSpec?, replace: Bool) throws {
        guard let new else {
            if replace {
                do { try clearQdisc(link) } catch { if error.errno != ENOENT && error.errno != EINVAL { throw error } }
            } else if old != nil { try clearQdisc(link) }
            return
        }
        let mode: QdiscMode = replace ? .replace : old == nil ? .add : old?.kinds == new.kinds ? .change : .replace
        try setQdisc(link, new, mode: mode)
        try verifyQdiscs()
    }
}
