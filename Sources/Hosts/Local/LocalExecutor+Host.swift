import Foundation
import Netlink
import NetlinkTypes
import Planning
import TopologyModel

/// The host itself: its identity, its MTUs, running programs in its namespaces, its tunnel keys,
/// and sampling its lab's byte counters.
extension LocalExecutor {
    // MARK: The host

    public func info() -> HostInfo { HostInfo.here() }

    /// Marks what `restoreMTUs` says that is no failure: an underlay another lab still needs raised.
    public static let keptPrefix = "kept: "

    public func restoreMTUs(_ changes: [MTUChange], lab: String) -> [String] {
        var failures: [String] = []
        var done: Set<String> = []
        for c in changes.reversed() where done.insert(c.interface).inserted {
            // Only what a lab raised on this host, only back to what it was before, and only when
            // no other lab still needs it raised.
            guard let record = MTURecords.read(c.interface) else {
                // Not this lab's to change: left as it is. No failure either, or `down` would
                // keep the journal and fail so forever (a reboot of the host clears the records).
                let now = (try? root().links())?.first { $0.name == c.interface }?.mtu
                failures.append("\(Self.keptPrefix)\(c.interface) left at MTU \(now.map { String($0) } ?? "?"): no lab on this host recorded raising it (no record in \(MTURecords.directory); a reboot clears them)")
                continue
            }
            if !record.holders.isEmpty && !record.holders.contains(lab) { continue }  // released already
            // Never the loopback (no lab raises it), never to an MTU no lab could have recorded.
            guard c.interface != "lo", MTURecords.range.contains(record.before) else {
                failures.append("\(Self.keptPrefix)\(c.interface) left as it is: its record (MTU \(record.before) before) is not one Pathbed writes")
                continue
            }
            let (restore, others) = MTURecords.release(c.interface, lab: lab)
            guard let before = restore else {
                failures.append("\(Self.keptPrefix)\(c.interface) left at its raised MTU: lab\(others.count == 1 ? "" : "s") \(others.joined(separator: ", ")) still need\(others.count == 1 ? "s" : "") it")
                continue
            }
            do {
                let h = try root()
                if let now = try h.links().first(where: { $0.name == c.interface }), now.mtu != before { try h.setMTU(c.interface, before) }
            } catch { failures.append("\(error)") }
        }
        return failures
    }

    public func heldMTUs(lab: String, underlays: [String]) throws -> [MTUChange] {
        // Only this host's interfaces (two agents of one machine in two network namespaces share
        // the records' directory), and only the underlays the topology gives it: a record that
        // names the lab for another interface is not the lab's doing.
        let here = Set(try root().links().map(\.name))
        let named = Set(underlays.compactMap { u in IPAddress(u).map { Self.interface(holding: $0) } ?? u })
        return MTURecords.held(by: lab).filter { here.contains($0.interface) && named.contains($0.interface) }
            .map { MTUChange(interface: $0.interface, mtu: $0.before) }
    }

    public func run(_ argv: [String], in namespace: String?, timeout: Double?, input: StdinFeed?, stop: @escaping () -> Bool,
                    output: @escaping (StandardStream, Data) -> Void) throws -> Int32 {
        // Programs run in the host's own namespace or in a lab's, never in a namespace no lab made.
        if let namespace { try requireOwned(namespace) }
        return try CommandRunner.run(argv, in: namespace, timeout: timeout, stop: { [stopWhen] in Interrupts.signal != 0 || stopWhen() || stop() }, input: input, output: output)
    }

    public func runAttached(_ argv: [String], in namespace: String) throws -> Int32 {
        try requireOwned(namespace)
        let fd = try NetworkNamespace.open(namespace)
        let pid = NetworkNamespace.spawn(fd, argv)
        Glibc.close(fd)
        guard pid > 0 else { throw LabError("cannot start \(argv[0]): \(String(cString: strerror(-pid)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    public func namespaceNames() -> [String] { NetworkNamespace.list() }

    public func tunnelKeys() -> [TunnelID: TunnelUse] {
        var keys: [TunnelID: TunnelUse] = [:]
        func scan(_ h: RouteHandle?, _ namespace: String?) {
            for l in (try? h?.links()) ?? [] {
                if let k = l.greKey { keys[TunnelID(kind: .gretap, id: k)] = TunnelUse(device: l.name, namespace: namespace) }
                if let v = l.vxlanID { keys[TunnelID(kind: .vxlan, id: v)] = TunnelUse(device: l.name, namespace: namespace) }
            }
        }
        scan(try? root(), nil)
        for ns in NetworkNamespace.list() where !NetworkNamespace.isPlaceholder(ns) {
            guard let fd = try? NetworkNamespace.open(ns) else { continue }
            scan(try? RouteHandle(nsfd: fd, namespace: ns), ns)
            Glibc.close(fd)
        }
        return keys
    }

    // MARK: Faults and measurements

    public func sampleCounters(_ namespaces: [String], sockets socketNamespaces: [String], interval: Double, duration: Double, stop: @escaping () -> Bool,
                               onSample: @escaping (CounterSample) -> Void) throws {
        // Handles of its own: sampling runs beside other work on this host.
        var handles: [(String, RouteHandle, Int32)] = []
        var diags: [String: SocketDiag] = [:]
        defer { for (_, _, fd) in handles { Glibc.close(fd) } }
        for ns in namespaces {
            let fd = try NetworkNamespace.open(ns)
            handles.append((ns, try RouteHandle(nsfd: fd, namespace: ns), fd))
            if socketNamespaces.contains(ns) { diags[ns] = SocketDiag(nsfd: fd) }
        }
        // Any interval and duration a request can carry is a time, never a trap: 10 ms to an hour
        // between rounds, at most 30 days in all.
        let step = UInt64((interval.isFinite ? min(max(interval, 0.01), 3600) : 0.1) * 1e9)
        let start = monotonicNanoseconds()
        let end = start + UInt64((duration.isFinite ? min(max(duration, 0), 30 * 86400) : 0) * 1e9)
        var next = start
        // The host's health about once a second (and in the first round): it costs a qdisc dump
        // per namespace, more than the counters.
        let healthEvery = max(1, Int((1e9 / Double(step)).rounded()))
        // Sockets every round, except under software emulation (QEMU's TCG), where a dump walks the
        // kernel's connection table a hundred times slower and the emulated CPU, already the
        // bottleneck, lost a fifth of the lab's throughput to it: there once a second.
        let socketsEvery = HostHealthProbe.runsUnder == "software emulation" ? SocketDiag.emulatedEvery(step: step) : 1
        var round = 0
        while monotonicNanoseconds() <= end, !stop(), Interrupts.signal == 0 {
            // Stamped at the middle of the round (one dump per namespace).
            let before = monotonicNanoseconds()
            var counters: [InterfaceCounters] = []
            let healthRound = round % healthEvery == 0
            var names: [String: [Int32: String]] = [:]
            var sockets: [SocketReading] = []
            for (ns, h, _) in handles {
                let links = (try? h.links()) ?? []
                if let diag = diags[ns], round % socketsEvery == 0 {
                    let devices = Dictionary(links.map { (UInt32(bitPattern: $0.index), $0.name) }, uniquingKeysWith: { a, _ in a })
                    sockets += diag.established(namespace: ns, devices: devices)
                    sockets += diag.connections(namespace: ns, devices: devices)
                }
                // The health reading names qdiscs from this same dump.
                if healthRound { names[ns] = Dictionary(links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a }) }
                for l in links where l.name != "lo" && !(l.group == 0 && Self.fallbackDevices.contains(l.name)) {
                    counters.append(InterfaceCounters(namespace: ns, interface: l.name, rxBytes: l.rxBytes, txBytes: l.txBytes))
                }
            }
            let health = healthRound ? HostHealthProbe.sample(handles.map { ($0.0, $0.1) }, names: names) : nil
            round += 1
            onSample(CounterSample(clock: before / 2 + monotonicNanoseconds() / 2, counters: counters, health: health, sockets: sockets))
            next += step
            let now = monotonicNanoseconds()
            if next > now { usleep(UInt32(min(next - now, 1_000_000_000) / 1000)) } else { next = now }
        }
    }
}
