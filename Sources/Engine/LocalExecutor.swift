import Foundation
import Netlink
import TopologyModel

/// Applies a host's operations to this machine's kernel through netlink.
///
/// One netlink socket per namespace, opened once; no thread ever runs Swift code inside a lab
/// namespace. Qdiscs are read back after they are set and compared with what was asked.
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
    /// Qdiscs set but not yet read back, by namespace.
    private var toVerify: [String: [(InterfaceRef, QdiscSpec)]] = [:]

    /// When set, `apply` adds each operation's time to `timings`, by kind (for `pathbed-bench lab --breakdown`).
    public var recordTimings = false
    /// Seconds and counts spent per kind of operation, when `recordTimings` is set.
    public private(set) var timings: [String: (count: Int, seconds: Double)] = [:]

    /// Also stops the commands `run` runs (besides a signal), e.g. at the end of a run.
    public var stopWhen: () -> Bool = { false }

    public init(host: String = "local") { self.host = host }

    deinit { closeAll() }

    func closeAll() {
        routeHandles.removeAll(); mptcpHandles.removeAll(); rootHandle = nil
        for fd in fds.values { close(fd) }
        fds.removeAll()
    }

    func root() throws(NetlinkError) -> RouteHandle {
        if let h = rootHandle { return h }
        let h = try RouteHandle(nsfd: -1, namespace: "the host")
        rootHandle = h
        return h
    }

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

    public func capabilities(sysctls: [String]) -> Capabilities { CapabilityProbe.run(sysctls: sysctls) }

    // MARK: Apply

    public func apply(_ operations: [Operation], progress: (Int) -> Void, interrupted: () -> Int32) throws {
        for (i, op) in operations.enumerated() {
            let signal = interrupted()
            if signal != 0 { throw Interrupted(signal: signal) }
            if recordTimings {
                let start = DispatchTime.now().uptimeNanoseconds
                try apply(op)
                let t = timings[op.kind, default: (0, 0)]
                timings[op.kind] = (t.count + 1, t.seconds + Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            } else {
                try apply(op)
            }
            if i % 200 == 199 { progress(i + 1) }
        }
        try verifyQdiscs()
        progress(operations.count)
    }

    public func apply(_ op: Operation) throws(NetlinkError) {
        switch op {
        case let .createNamespace(name, lab):
            // Tagged before it is named: a namespace without the tag is never removed by `down`.
            try NetworkNamespace.create(name, tag: Ownership.namespaceTag(lab: lab))
            createdNamespaces.append(name)
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
        case let .createGretap(r, local, remote, key, mtu, group):
            // A tunnel's underlay is the namespace it is made in: it is made in the host's under a
            // name of the lab's own (and its group), then moved into its namespace and renamed.
            let temporary = Self.temporaryTunnelName(key)
            let h = try root()
            try h.createLink(.gretap(LinkAttributes(name: temporary, mtu: mtu, group: group), nsfd: -1,
                                     local: Self.netlink(local), remote: Self.netlink(remote), key: key))
            do { try h.move(temporary, toNamespace: try fd(r.namespace), as: r.name) } catch {
                try? h.deleteLink(temporary)
                throw error
            }
        case let .enslave(r, bridge):
            try route(r.namespace).enslave(r.name, to: bridge)
        case let .addAddress(r, address):
            try route(r.namespace).addAddress(Self.netlink(address), to: r.name)
        case let .setUp(r):
            try route(r.namespace).setUp(r.name)
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
        case let .setUnderlayMTU(interface, address, mtu):
            guard let name = interface ?? address.flatMap(Self.interface(holding:)) else {
                throw NetlinkError("raise the underlay MTU", "to \(mtu)", namespace: "the host", errno: EADDRNOTAVAIL,
                                   hint: address.map { "no interface of this host has the underlay address \($0); give the host's real address as `underlay:`, or name the interface with `interface:`" }
                                       ?? "name the underlay interface with `interface:` under the host")
            }
            let h = try root()
            guard let before = try h.links().first(where: { $0.name == name }) else {
                throw NetlinkError("raise the underlay MTU", "of \(name)", namespace: "the host", errno: ENODEV)
            }
            if before.mtu != mtu {
                try h.setMTU(name, mtu)
                changedMTUs.append(MTUChange(interface: name, mtu: before.mtu))
            }
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

    /// The netlink form of a qdisc spec.
    static func shaping(_ q: QdiscSpec) -> Shaping? {
        let netem = q.netem.map { n -> NetemParameters in
            var p = NetemParameters()
            p.delayMicroseconds = UInt32(clamping: n.delayMicroseconds); p.jitterMicroseconds = UInt32(clamping: n.jitterMicroseconds)
            p.delayCorrelation = n.delayCorrelation; p.distribution = n.distribution
            p.loss = n.loss; p.lossCorrelation = n.lossCorrelation
            p.duplicate = n.duplicate; p.corrupt = n.corrupt
            p.reorder = n.reorder; p.reorderCorrelation = n.reorderCorrelation; p.gap = n.gap.map { UInt32(clamping: $0) }
            p.limitPackets = n.limitPackets
            return p
        }
        switch (q.rootKind, q.rateBitsPerSecond) {
        case let ("tbf"?, rate?): return .tbf(rateBytes: rate / 8, burstBytes: q.burstBytes ?? 3028, limitBytes: q.limitBytes ?? 100_000)
        case let ("htb"?, rate?): return .htb(rateBytes: rate / 8, burstBytes: q.burstBytes ?? 3028, netem: netem)
        case ("netem"?, _): return netem.map { .netem($0) }
        default: return nil
        }
    }

    /// Sets, changes in place or replaces a profile's qdiscs, and queues them for read-back.
    public func setQdisc(_ r: InterfaceRef, _ q: QdiscSpec, mode: QdiscMode) throws(NetlinkError) {
        guard let shaping = Self.shaping(q) else { return }
        try route(r.namespace).setShaping(r.name, shaping, mode: mode)
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
        let expectedRoot = q.rootKind ?? ""
        guard rootQdisc.kind == expectedRoot else { throw fail("root qdisc \(rootQdisc.kind), not \(expectedRoot)") }
        if expectedRoot == "tbf", let want = q.rateBitsPerSecond {
            if let got = rootQdisc.rateBytesPerSecond, got != want / 8 { throw fail("rate \(got * 8) bit/s, not \(want)") }
            if let want = q.limitBytes, let got = rootQdisc.limit, got != want { throw fail("tbf limit \(got) bytes, not \(want)") }
        }
        if expectedRoot == "htb", let want = q.rateBitsPerSecond, let got = try h.htbRate(r.name), got != want / 8 {
            throw fail("htb rate \(got * 8) bit/s, not \(want)")
        }
        if let n = q.netem {
            guard let netem = here.first(where: { $0.kind == "netem" }) else { throw fail("no netem qdisc") }
            // The kernel keeps times in its clock's ticks: allow one microsecond of rounding.
            if let d = netem.delayMicroseconds, abs(Int64(d) - n.delayMicroseconds) > 1 { throw fail("netem delay \(d)us, not \(n.delayMicroseconds)us") }
            if let j = netem.jitterMicroseconds, abs(Int64(j) - n.jitterMicroseconds) > 1 { throw fail("netem jitter \(j)us, not \(n.jitterMicroseconds)us") }
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
                do { try h.setMTU(c.interface, c.mtu) } catch { failures.append("\(error)") }
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
        closeAll()
        _ = ProcessStopper.stop(in: names)
        for ns in names { try NetworkNamespace.delete(ns) }
    }

    public func deleteLink(_ link: InterfaceRef) throws {
        try route(link.namespace).deleteLink(link.name)
    }

    public func setProfile(_ link: InterfaceRef, from old: QdiscSpec?, to new: QdiscSpec?) throws {
        try setProfile(link, from: old, to: new, replace: false)
    }

    /// With `replace`, whatever is on the link now is replaced (`old` is not trusted).
    func setProfile(_ link: InterfaceRef, from old: QdiscSpec?, to new: QdiscSpec?, replace: Bool) throws {
        guard let new, new.rootKind != nil else {
            if replace {
                do { try clearQdisc(link) } catch { if error.errno != ENOENT && error.errno != EINVAL { throw error } }
            } else if old?.rootKind != nil { try clearQdisc(link) }
            return
        }
        let mode: QdiscMode = replace ? .replace : old?.rootKind == nil ? .add : old?.kinds == new.kinds ? .change : .replace
        try setQdisc(link, new, mode: mode)
        try verifyQdiscs()
    }

    // MARK: The host

    public func info() -> HostInfo { HostInfo.here() }

    public func restoreMTUs(_ changes: [MTUChange]) -> [String] {
        var failures: [String] = []
        for c in changes.reversed() {
            do {
                let h = try root()
                guard let now = try h.links().first(where: { $0.name == c.interface }) else { continue }  // gone: nothing to restore
                if now.mtu != c.mtu { try h.setMTU(c.interface, c.mtu) }
            } catch { failures.append("\(error)") }
        }
        return failures
    }

    public func run(_ argv: [String], in namespace: String?, timeout: Double?, input: StdinFeed?, output: @escaping (OutputStream, Data) -> Void) throws -> Int32 {
        try CommandRunner.run(argv, in: namespace, timeout: timeout, stop: { [stopWhen] in Interrupts.signal != 0 || stopWhen() }, input: input, output: output)
    }

    public func tunnelKeys() -> [UInt32: String] {
        var keys: [UInt32: String] = [:]
        func scan(_ h: RouteHandle?, _ where_: String) {
            for l in (try? h?.links()) ?? [] { if let k = l.greKey { keys[k] = "\(l.name) in \(where_)" } }
        }
        scan(try? root(), "the host's namespace")
        for ns in NetworkNamespace.list() where !NetworkNamespace.isPlaceholder(ns) {
            guard let fd = try? NetworkNamespace.open(ns) else { continue }
            scan(try? RouteHandle(nsfd: fd, namespace: ns), ns)
            close(fd)
        }
        return keys
    }

    // MARK: Faults and measurements

    public func sampleCounters(_ namespaces: [String], interval: Double, duration: Double, stop: @escaping () -> Bool,
                               onSample: @escaping (CounterSample) -> Void) throws {
        // Handles of its own: sampling runs beside other work on this host.
        var handles: [(String, RouteHandle, Int32)] = []
        defer { for (_, _, fd) in handles { close(fd) } }
        for ns in namespaces {
            let fd = try NetworkNamespace.open(ns)
            handles.append((ns, try RouteHandle(nsfd: fd, namespace: ns), fd))
        }
        let step = UInt64(max(interval, 0.01) * 1e9)
        let start = monotonicNanoseconds()
        let end = start + UInt64(max(duration, 0) * 1e9)
        var next = start
        while monotonicNanoseconds() <= end, !stop(), Interrupts.signal == 0 {
            // Stamped at the middle of the round (one dump per namespace).
            let before = monotonicNanoseconds()
            var counters: [InterfaceCounters] = []
            for (ns, h, _) in handles {
                for l in (try? h.links()) ?? [] where l.name != "lo" && !(l.group == 0 && Self.fallbackDevices.contains(l.name)) {
                    counters.append(InterfaceCounters(namespace: ns, interface: l.name, rxBytes: l.rxBytes, txBytes: l.txBytes))
                }
            }
            onSample(CounterSample(clock: before / 2 + monotonicNanoseconds() / 2, counters: counters))
            next += step
            let now = monotonicNanoseconds()
            if next > now { usleep(UInt32(min(next - now, 1_000_000_000) / 1000)) } else { next = now }
        }
    }

    // MARK: State

    public func namespaces(of lab: String) -> [NamespaceState] {
        NetworkNamespace.list().filter { Ownership.isNamed($0, lab: lab) }.map { ns in
            if NetworkNamespace.isPlaceholder(ns) { return NamespaceState(name: ns, tagged: false, placeholder: true) }
            return NamespaceState(name: ns, tagged: (try? route(ns).alias(of: "lo")) == Ownership.namespaceTag(lab: lab))
        }
    }

    public func interfaces(in namespace: String) throws -> [InterfaceState] {
        let h = try route(namespace)
        let links = try h.links()
        let qdiscs = try h.qdiscs()
        // Tunnel modules put fallback devices (gre0, gretap0, ...) into every namespace: not the lab's.
        return try links.filter { $0.name != "lo" && !($0.group == 0 && Self.fallbackDevices.contains($0.name)) }.map { l in
            let mine = qdiscs.filter { $0.interfaceIndex == l.index }
            var shaping: [String] = []
            if let root = mine.first(where: { $0.parent == 0xFFFF_FFFF }), root.kind != "noqueue" {
                switch root.kind {
                case "tbf": shaping.append("tbf \(Bitrate(bitsPerSecond: (root.rateBytesPerSecond ?? 0) * 8))")
                case "htb": shaping.append("htb \(try h.htbRate(l.name).map { Bitrate(bitsPerSecond: $0 * 8).description } ?? "?")")
                default: shaping.append(root.kind)
                }
            }
            if let n = mine.first(where: { $0.kind == "netem" }) {
                var s = "netem"
                if let d = n.delayMicroseconds, d > 0 { s += " delay \(Duration(nanoseconds: Int64(d) * 1000))" }
                if let j = n.jitterMicroseconds, j > 0 { s += " jitter \(Duration(nanoseconds: Int64(j) * 1000))" }
                if let loss = n.lossPercent, loss > 0 { s += " loss \(Percent(loss))" }
                if shaping.first == "netem" { shaping = [s] } else { shaping.append(s) }
            }
            return InterfaceState(name: l.name, kind: l.kind ?? "-", isUp: l.isUp, mtu: l.mtu, group: l.group,
                                  shaping: shaping.joined(separator: " / "))
        }
    }

    public func removeLab(_ lab: String, waitForKernel: Bool) -> RemovalReport {
        var report = RemovalReport()
        let states = namespaces(of: lab)
        closeAll()
        report.foreign = states.filter { !$0.tagged && !$0.placeholder }.map(\.name)
        for p in states where p.placeholder { if NetworkNamespace.removePlaceholder(p.name) { report.removed.append(p.name) } }
        let ours = states.filter(\.tagged).map(\.name)
        // Programs still running in the lab (workloads, `pathbed exec`) would keep its namespaces alive.
        report.stoppedProcesses = ProcessStopper.stop(in: ours)
        // A tunnel caught between its creation and its move (a kill -9 there): in the host's namespace.
        if let h = try? root() {
            let group = Ownership.group(lab: lab)
            for l in (try? h.links()) ?? [] where l.group == group && l.name.hasPrefix("pbgt") && l.kind == "gretap" {
                do { try h.deleteLink(l.name); report.removed.append(l.name) } catch { report.failures.append("\(error)") }
            }
        }
        // Node namespaces first, then the bridge namespace; the kernel frees their devices in the background.
        for ns in ours.sorted(by: { $0.count > $1.count }) {
            do { try NetworkNamespace.delete(ns); report.removed.append(ns) } catch { report.failures.append("\(error)") }
        }
        TransferLeftovers.remove(lab: lab)
        if waitForKernel, !report.removed.isEmpty { report.kernelFreeSeconds = KernelSettle.wait() }
        return report
    }
}

/// The transfer workload's files, left in /tmp when its run was killed: directories named
/// `pathbed-transfer-LAB-N.XXXXXX` that are root's own 0700 directories (as `mktemp -d` made
/// them), holding only regular files. Anything else by that name is left alone.
enum TransferLeftovers {
    static func remove(lab: String) {
        guard LabName.problem(lab) == nil else { return }
        let stem = TransferWorkload.directoryStem(lab: lab)
        for name in Directory.names(in: "/tmp") ?? [] {
            let path = "/tmp/\(name)"
            guard path.hasPrefix(stem) else { continue }
            // N.XXXXXX: the workload's index, and what mktemp added (another lab's name goes on with a dash).
            let rest = path.dropFirst(stem.count).split(separator: ".", omittingEmptySubsequences: false)
            guard rest.count == 2, !rest[0].isEmpty, rest[0].allSatisfy(\.isNumber), rest[1].count == 6 else { continue }
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == 0, (st.st_mode & 0o777) == 0o700,
                  let files = Directory.names(in: path) else { continue }
            let regular = files.allSatisfy { f in var fs = stat(); return lstat("\(path)/\(f)", &fs) == 0 && (fs.st_mode & S_IFMT) == S_IFREG }
            guard regular else { continue }
            for f in files { unlink("\(path)/\(f)") }
            rmdir(path)
        }
    }
}

/// Stops the processes inside namespaces: SIGTERM, then SIGKILL to those left after 2 s.
enum ProcessStopper {
    static func stop(in namespaces: [String]) -> Int {
        var pids = NetworkNamespace.pids(in: namespaces).filter { $0 != getpid() }
        let count = pids.count
        guard !pids.isEmpty else { return 0 }
        for p in pids { kill(p, SIGTERM) }
        let deadline = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
        while !pids.isEmpty, DispatchTime.now().uptimeNanoseconds < deadline {
            usleep(20_000)
            pids = pids.filter { kill($0, 0) == 0 && !isZombie($0) }
        }
        for p in pids { kill(p, SIGKILL) }
        return count
    }

    static func isZombie(_ pid: pid_t) -> Bool {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return true }
        return s[s.index(close, offsetBy: 2)...].hasPrefix("Z")
    }
}

/// Measures how long the kernel keeps freeing removed namespaces in the background.
///
/// Deleting a namespace returns at once; the kernel tears its devices down afterwards, holding
/// the lock every link change needs. A tiny probe (create and delete a veth pair in a throwaway
/// namespace) is slow while that work runs: the wait ends once the probe is back at its rested speed.
public enum KernelSettle {
    public static func wait(timeout: Double = 30) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        let probe = "pb-settle-\(getpid())"
        guard (try? NetworkNamespace.create(probe)) != nil else { return 0 }
        defer { try? NetworkNamespace.delete(probe) }
        guard let fd = try? NetworkNamespace.open(probe), let h = try? RouteHandle(nsfd: fd, namespace: probe) else { return 0 }
        defer { close(fd) }
        // Done when three probes in a row are as quick as the quickest seen (within 50 % + 1 ms).
        var quickest = Double.infinity, quick = 0, samples: [Double] = []
        // Ctrl-C ends the wait (when the command catches signals): the probe namespace goes with it.
        while quick < 3, Interrupts.signal == 0 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            if (try? h.createLink(.veth(LinkAttributes(name: "s0"), nsfd: fd, peer: LinkAttributes(name: "s1"), peerNsfd: fd))) != nil {
                try? h.deleteLink("s0")
            }
            let took = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples.append(took)
            quickest = min(quickest, took)
            quick = samples.suffix(3).count == 3 && samples.suffix(3).allSatisfy({ $0 <= quickest * 1.5 + 0.001 }) ? 3 : 0
            if Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 > timeout { break }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
