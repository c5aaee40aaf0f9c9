import Foundation
import Hosts
import Planning
import TopologyModel

extension LabController {
    /// Refuses, before any change, what a host's kernel cannot do.
    func checkCapabilities(_ t: Topology, _ plan: LabPlan, progress: (String) -> Void = { _ in }) throws {
        var problems: [String] = []
        // Every host's kernel is tried at once (under software emulation each takes seconds).
        let found = CapabilitiesBox(count: plan.hosts.count)
        found.executors = try plan.hosts.map { try executor($0.host) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: plan.hosts.count) { [plan] i in
            found.set(i, found.executors[i].capabilities(sysctls: plan.hosts[i].sysctlKeys))
        }
        progress("\(plan.hosts.map(\.host).joined(separator: ", ")): kernels checked in \(String(format: "%.2f", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)) s")
        for (i, h) in plan.hosts.enumerated() {
            problems += found.get(i).problems(for: h, declaredMPTCP: t.host(named: h.host)?.mptcp ?? true, labSpansHosts: t.hosts.count > 1, origins: Capabilities.Origins(t))
                .map { "    - \(h.host): \($0.name): \($0.detail); \($0.fix)" }
        }
        if !problems.isEmpty {
            throw LabError("lab '\(t.name)' needs what the kernel lacks:\n" + problems.joined(separator: "\n"),
                           fix: "`pathbed doctor \(t.file)` shows every check; nothing was changed")
        }
    }

    /// The hosts' parallel builds: each executor is used by one thread; what they report is
    /// gathered under a lock. Lives only while they run.
    final class ApplyBox: @unchecked Sendable {
        private let lock = NSLock()
        private var times: [Double]
        private var errors: [(Int, any Error)] = []
        let executors: [HostExecutor]
        private let progress: (String) -> Void
        private let signal: () -> Int32
        init(executors: [HostExecutor], progress: @escaping (String) -> Void, interrupted: @escaping () -> Int32) {
            self.executors = executors; self.progress = progress; signal = interrupted
            times = Array(repeating: 0, count: executors.count)
        }
        func say(_ s: String) { lock.withLock { progress(s) } }
        /// A signal, or another host's failure: every host stops and rolls back.
        func interrupted() -> Int32 { let s = lock.withLock { signal() }; return s != 0 ? s : failed ? SIGTERM : 0 }
        func finish(_ i: Int, seconds: Double) { lock.withLock { times[i] = seconds } }
        func fail(_ i: Int, _ e: any Error) { lock.withLock { errors.append((i, e)) } }
        var failed: Bool { lock.withLock { !errors.isEmpty } }
        /// The first host's error that is not only the others' stop.
        var firstError: (any Error)? {
            lock.withLock { (errors.first { !($0.1 is Interrupted) } ?? errors.first)?.1 }
        }
        func seconds(at i: Int) -> Double { lock.withLock { times[i] } }
    }

    final class CapabilitiesBox: @unchecked Sendable {
        private var items: [Capabilities?]
        /// Each one is used by one thread only.
        var executors: [HostExecutor] = []
        private let lock = NSLock()
        init(count: Int) { items = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ c: Capabilities) { lock.withLock { items[i] = c } }
        func get(_ i: Int) -> Capabilities { lock.withLock { items[i] } ?? Capabilities(checks: []) }
    }

    /// Refuses tunnel keys (gretap) and VNIs (vxlan) that another tunnel on one of the hosts
    /// already uses: two labs between the same hosts must never share a key (their traffic
    /// would mix), and a host takes one VXLAN device per VNI whatever its remote.
    func checkTunnelKeys(_ t: Topology, _ plan: LabPlan) throws {
        var clashes: [String] = []
        for h in plan.hosts {
            let wanted = h.operations.compactMap { op -> (TunnelID, InterfaceRef)? in
                switch op {
                case let .createGretap(r, _, _, key, _, _): return (TunnelID(kind: .gretap, id: key), r)
                case let .createVxlan(r, _, _, vni, _, _): return (TunnelID(kind: .vxlan, id: vni), r)
                default: return nil
                }
            }
            guard !wanted.isEmpty else { continue }
            let inUse = try executor(h.host).tunnelKeys()
            for (id, r) in wanted {
                guard let user = inUse[id] else { continue }
                // This lab's own tunnels (a reconcile, or leftovers being rebuilt) are not a clash.
                if let ns = user.namespace, Ownership.isNamed(ns, lab: t.name) { continue }
                clashes.append("    - \(h.host): \(id) for \(r) is already used by \(user)")
            }
        }
        if !clashes.isEmpty {
            throw LabError("tunnel keys of lab '\(t.name)' are already in use:\n" + clashes.joined(separator: "\n"),
                           fix: "keys and VNIs come from the lab's name and the link's position: rename the lab, or take down the lab that uses them")
        }
    }
}
