import Foundation
import Hosts
import Planning
import TopologyModel

extension LabController {
    // MARK: Down

    public struct DownResult: Sendable {
        public var removed: Int
        public var foreign: [String]
        public var stoppedProcesses: Int
        public var seconds: Double
        public var kernelFreeSeconds: Double?
        public var restoredMTUs: [String] = []
        /// Hosts that could not be reached and were forgotten, with why.
        public var forgotten: [String] = []
    }

    /// Removes everything lab `lab` created on every host: the namespaces named and tagged as its
    /// own, also after an interrupted `up`. Namespaces named like the lab's but untagged are left alone.
    ///
    /// A host that cannot be reached is forgotten (its part of the lab is taken as gone with it)
    /// when `forgetUnreachable` says so, or when it was a VM of the built-in pair that is no
    /// longer running: a VM that is gone takes its namespaces with it, and cannot come back.
    /// `underlays`: without a journal, each host's underlays as the topology gives them (an
    /// interface or an address): only their MTU records are followed.
    public func down(_ lab: String, waitForKernel: Bool = false, forgetUnreachable: Bool = false, underlays: [String: [String]] = [:]) throws -> DownResult {
        if let problem = LabName.problem(lab) { throw LabError(problem, fix: "give the lab's name (see `pathbed status`) or its topology file") }
        let lock = try store.lock(lab)
        defer { lock.release() }
        if case let .ok(j) = store.load(lab) {
            if j.state == .building, j.pid != getpid(), kill(j.pid, 0) == 0, Self.isPathbed(j.pid) {
                throw LabError("`up` of lab '\(lab)' is still running (pid \(j.pid))", fix: "wait for it, or stop it (kill \(j.pid)) and run down again")
            }
            if let holder = Self.liveRun(j), holder != getpid() {
                throw LabError("a run of lab '\(lab)' is in progress (pid \(holder))",
                               fix: "stop it (kill \(holder)): it reverts its faults and writes what it measured; then `pathbed down \(lab)` (a run without --keep removes the lab itself)")
            }
        }
        HostConnections.connectAll(Array(executors.values))
        var result = DownResult(removed: 0, foreign: [], stoppedProcesses: 0, seconds: 0)
        var failures: [String] = []
        let journal = store.load(lab).journal
        let mtus = journal?.changedMTUs ?? [:]
        var reachable: [HostExecutor] = []
        for e in executors.values.sorted(by: { $0.host < $1.host }) {
            do { try e.connect(); reachable.append(e) } catch {
                if forgetUnreachable || LocalVMs.isGone(access[e.host]) {
                    result.forgotten.append("\(e.host) (\(error))")
                } else {
                    failures.append("\(e.host) cannot be reached: \(error)")
                }
            }
        }
        if !failures.isEmpty {
            throw LabError("could not remove lab '\(lab)': a host cannot be reached:\n    " + failures.joined(separator: "\n    "),
                           fix: "bring the host back and run `pathbed down \(lab)` again; if it is gone for good, `pathbed down \(lab) --forget-unreachable` removes the rest and forgets it")
        }
        for e in reachable {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let r = e.removeLab(lab, waitForKernel: waitForKernel)
            result.seconds = max(result.seconds, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 - (r.kernelFreeSeconds ?? 0))
            result.removed += r.removed.count
            result.foreign += r.foreign
            result.stoppedProcesses += r.stoppedProcesses
            failures += r.failures
            // Without a journal (this machine rebooted since `up`), each host's own records say
            // which underlays the lab holds raised.
            var changed = mtus[e.host] ?? []
            if journal == nil {
                do { changed = try e.heldMTUs(lab: lab, underlays: underlays[e.host] ?? []) } catch { failures.append("\(e.host): cannot read its MTU records: \(error)") }
            }
            if !changed.isEmpty {
                let said = e.restoreMTUs(changed, lab: lab)
                let kept = said.filter { $0.hasPrefix(LocalExecutor.keptPrefix) }, f = said.filter { !$0.hasPrefix(LocalExecutor.keptPrefix) }
                failures += f
                if f.isEmpty {
                    result.restoredMTUs += changed.filter { c in !kept.contains { $0.dropFirst(LocalExecutor.keptPrefix.count).hasPrefix(c.interface + " ") } }
                        .map { "\(e.host): \($0.interface) back to MTU \($0.mtu)" }
                    result.restoredMTUs += kept.map { "\(e.host): " + $0.dropFirst(LocalExecutor.keptPrefix.count) }
                }
            }
            if let k = r.kernelFreeSeconds { result.kernelFreeSeconds = max(result.kernelFreeSeconds ?? 0, k) }
        }
        if !failures.isEmpty {
            throw LabError("could not remove everything of lab '\(lab)':\n    " + failures.joined(separator: "\n    "),
                           fix: "the journal is kept: run `pathbed down \(lab)` again; `pathbed status \(lab)` shows what is left")
        }
        store.remove(lab)
        return result
    }
}
