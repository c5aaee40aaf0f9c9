import Foundation
import Hosts
import Planning
import TopologyModel

/// up / down / status of labs, over one executor per host.
///
/// The controller never touches a kernel itself: every change goes through the host's
/// executor (`LocalExecutor` here, the agent for remote hosts, `RecordingExecutor` in tests).
public struct LabController {
    public var store: StateStore
    /// Executors by host name.
    public var executors: [String: HostExecutor]
    /// Polled between operations: a signal number stops the work and rolls it back.
    public var interrupted: () -> Int32

    public init(store: StateStore = StateStore(), executors: [String: HostExecutor], interrupted: @escaping () -> Int32 = { Interrupts.signal }) {
        self.store = store; self.executors = executors; self.interrupted = interrupted
    }

    /// How each host is reached (kept in the journal, so that `down`, `status` and `exec` find them).
    public var access: [String: HostAccess] = [:]

    /// Executors for a lab's hosts: this machine in process, every other host through its agent
    /// (over ssh, as the topology or the inventory says).
    public static func forLab(_ t: Topology, inventory: Inventory? = nil, store: StateStore = StateStore()) -> LabController {
        let access = (inventory ?? Inventory(hosts: [:])).access(for: t)
        return make(access: access, store: store)
    }

    /// Executors for the hosts a lab's journal names (this machine alone when there is none).
    public static func forJournal(_ lab: String, store: StateStore = StateStore()) -> LabController {
        if let j = store.load(lab).journal, let access = j.access, !access.isEmpty { return make(access: access, store: store) }
        if let j = store.load(lab).journal, let plan = j.plan, plan.hosts.count == 1 {
            return make(access: [plan.hosts[0].host: HostAccess(host: plan.hosts[0].host)], store: store)
        }
        return make(access: ["local": HostAccess(host: "local")], store: store)
    }

    /// Executors for this machine only (labs without remote hosts; listing).
    public static func forThisMachine(store: StateStore = StateStore()) -> LabController {
        make(access: ["local": HostAccess(host: "local")], store: store)
    }

    static func make(access: [String: HostAccess], store: StateStore) -> LabController {
        var executors: [String: HostExecutor] = [:]
        for (name, a) in access { executors[name] = a.executor(controlDirectory: store.sshControlDirectory) }
        var c = LabController(store: store, executors: executors)
        c.access = access
        return c
    }

    /// True when some host is reached through an agent.
    public var spansHosts: Bool { access.values.contains { !$0.isLocal } }

    /// Refuses a command that changes or enters a kernel's namespaces when not run as root.
    public static func requireRoot(_ what: String, _ command: String) throws(LabError) {
        guard geteuid() == 0 else { throw LabError("\(what) needs root", fix: "run as root (sudo pathbed \(command))") }
    }

    public struct UpResult: Sendable {
        public enum Outcome: Sendable { case built, unchanged, reconciled, dryRun }
        public var outcome: Outcome
        public var operations: Int
        public var namespaces: Int
        public var seconds: Double
        /// For a reconcile or a dry run: what changes, as people read it.
        public var changes: [String] = []
        /// Leftovers of an interrupted `up` that were removed first.
        public var recovered: Int = 0
        /// Seconds each host took to apply its part.
        public var hostSeconds: [(host: String, seconds: Double)] = []
        /// Tunnel probes that passed.
        public var probes: Int = 0
    }

    /// Whether lab `t.name` is up here, and from this file's plan or another (a file edited since):
    /// what `verify` asks before it measures a lab as it is.
    public enum Standing: Sendable { case notUp, asPlanned, fromAnotherPlan(file: String) }
    public func standing(_ t: Topology) -> Standing {
        guard case let .ok(j) = store.load(t.name) else { return .notUp }
        return j.planDigest == Self.digest(Planner.plan(t)) ? .asPlanned : .fromAnotherPlan(file: j.file)
    }

    static func digest(_ plan: LabPlan) -> String {
        let e = JSONEncoder(); e.outputFormatting = .sortedKeys
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in (try? e.encode(plan)) ?? Data() { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    /// The main connection to `host`.
    public func executor(_ host: String) throws(LabError) -> HostExecutor {
        guard let e = executors[host] else { throw LabError("lab host '\(host)' has no way to reach it here", fix: "`pathbed plan` shows each host; multi-host labs need the agent") }
        return e
    }

    /// Builds the lab, finds it already built, or changes the running lab to match the file.
    /// Validates everything before the first change; on failure or interrupt, removes what it created.
    /// With `asRun`, the lab is this process's run's until `releaseRun`: `down`, another `run`
    /// and `up` of a changed file are refused meanwhile.
    public func up(_ t: Topology, dryRun: Bool = false, asRun: Bool = false, progress: (String) -> Void = { _ in }) throws -> UpResult {
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        let plan = Planner.plan(t)
        let digest = Self.digest(plan)
        let lock = try store.lock(t.name)
        defer { lock.release() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        HostConnections.connectAll(Array(executors.values))
        for r in executors.values.sorted(by: { $0.host < $1.host }) {
            if let info = r.connectedInfo {
                progress("\(r.host): agent of Pathbed \(info.version) on \(info.hostname), Linux \(info.kernel); connected in \(String(format: "%.2f", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)) s")
            }
        }

        // What is there now, per host.
        var present: [String: [NamespaceState]] = [:]
        for h in plan.hosts { present[h.host] = try executor(h.host).namespaces(of: t.name) }
        let foreign = present.values.flatMap { $0 }.filter { !$0.tagged && !$0.placeholder }.map(\.name)
        if !foreign.isEmpty {
            throw LabError("namespaces named like lab '\(t.name)' exist that this lab did not make (no tag on their loopback): \(foreign.sorted().prefix(5).joined(separator: ", "))",
                           fix: "Pathbed never touches them; remove them if they are leftovers (ip netns del NAME), or rename the lab")
        }
        var recovered = 0
        var previous: LabJournal?
        switch store.load(t.name) {
        case let .unreadable(why):
            throw LabError("the journal of lab '\(t.name)' cannot be read: \(why)", fix: "run `pathbed down \(t.name)`: it removes what is tagged as the lab's")
        case let .ok(j) where j.state == .building:
            if j.pid != getpid(), kill(j.pid, 0) == 0, Self.isPathbed(j.pid) {
                throw LabError("`up` of lab '\(t.name)' is still running (pid \(j.pid))", fix: "wait for it, or stop it (kill \(j.pid))")
            }
            // An earlier `up` was killed midway: finish its rollback before building anew.
            if !dryRun {
                progress("an earlier `up` of lab \(t.name) (pid \(j.pid)) did not finish; removing what it left")
                for h in plan.hosts { recovered += try executor(h.host).removeLab(t.name, waitForKernel: false).removed.count }
                store.remove(t.name)
                for h in plan.hosts { present[h.host] = [] }
            }
        case let .ok(j):
            previous = j
        case .missing:
            let leftovers = present.values.flatMap { $0 }.map(\.name)
            if !leftovers.isEmpty {
                throw LabError("namespaces of lab '\(t.name)' exist without a journal: \(leftovers.sorted().prefix(3).joined(separator: ", "))\(leftovers.count > 3 ? ", ..." : "")",
                               fix: "run `pathbed down \(t.name)` to remove them")
            }
        }

        if var previous {
            let wanted = Set(plan.hosts.flatMap(\.namespaces))
            let there = Set(present.values.flatMap { $0 }.map(\.name))
            let unchanged = previous.planDigest == digest && wanted.isSubset(of: there)
            if let holder = Self.liveRun(previous), holder != getpid(), !dryRun, asRun || !unchanged {
                throw LabError("a run of lab '\(t.name)' is in progress (pid \(holder))",
                               fix: "wait for it to end, or stop it (kill \(holder)): it reverts its faults and writes what it measured")
            }
            // A run that ended without cleaning up (killed): what it left running in the lab (its
            // servers, its monitors) is stopped, and its faults undone, before anything else.
            let changes = dryRun ? Self.leftoverNotes(previous) : try recoverFromDeadRun(&previous)
            if unchanged {
                if asRun && !dryRun { try claimRun(&previous) }
                return UpResult(outcome: dryRun ? .dryRun : changes.isEmpty ? .unchanged : .reconciled, operations: 0, namespaces: wanted.count,
                                seconds: elapsed(), changes: changes)
            }
            guard let oldPlan = previous.plan else {
                throw LabError("lab '\(t.name)' was built by an older Pathbed whose journal has no plan", fix: "run `pathbed down \(t.name)`, then `up`")
            }
            var r = try reconcile(t, from: oldPlan, to: plan, digest: digest, present: present, previous: previous, dryRun: dryRun, progress: progress, start: start)
            if asRun && !dryRun, case var .ok(j) = store.load(t.name) { try claimRun(&j) }
            r.changes = changes + r.changes
            return r
        }

        let namespaces = Self.namespacesByHost(plan)
        if dryRun {
            return UpResult(outcome: .dryRun, operations: plan.operationCount, namespaces: namespaces.values.reduce(0) { $0 + $1.count },
                            seconds: elapsed(), changes: ["build lab \(t.name): \(plan.operationCount) operations (`pathbed plan` lists them)"])
        }
        try checkCapabilities(t, plan, progress: progress)
        try checkTunnelKeys(t, plan)
        var journal = LabJournal(lab: t.name, file: t.file, state: .building, planDigest: digest, namespaces: namespaces,
                                 plan: plan, pid: getpid(), started: Date(), access: access.isEmpty ? nil : access)
        if asRun { journal.runPID = getpid() }
        try store.save(journal)
        var done: [HostExecutor] = []
        var hostSeconds: [(host: String, seconds: Double)] = []
        var probes = 0
        do {
            // Every host builds its part at once (each has its own kernel); when one fails, the
            // others finish or stop, and every host rolls back.
            let executors = try plan.hosts.map { try executor($0.host) }
            done = executors
            let (firstError, seconds) = withoutActuallyEscaping(progress) { say in
                let applied = ApplyBox(executors: executors, progress: say, interrupted: interrupted)
                DispatchQueue.concurrentPerform(iterations: plan.hosts.count) { [plan] i in
                    let h = plan.hosts[i]
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    do {
                        try applied.executors[i].apply(h.operations, progress: { applied.say("\(h.host): \($0)/\(h.operations.count) operations") },
                                                       interrupted: { applied.interrupted() })
                        applied.finish(i, seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                    } catch { applied.fail(i, error) }
                }
                return (applied.firstError, plan.hosts.indices.map { applied.seconds(at: $0) })
            }
            for (i, h) in plan.hosts.enumerated() where !executors[i].changedMTUs.isEmpty {
                journal.changedMTUs = (journal.changedMTUs ?? [:]).merging([h.host: executors[i].changedMTUs]) { $1 }
            }
            if journal.changedMTUs != nil { try store.save(journal) }
            if let firstError { throw firstError }
            hostSeconds = plan.hosts.enumerated().map { ($1.host, seconds[$0]) }
            let probePlan = TunnelProbe.plan(t)
            if !probePlan.isEmpty {
                let failed = probeTunnels(t, progress: progress)
                let signal = interrupted()
                if signal != 0 { throw LabError("interrupted (signal \(signal)) while probing the tunnels; nothing was left built") }
                if !failed.isEmpty {
                    throw LabError("the MTU plan does not hold; nothing was left built:\n    " + failed.joined(separator: "\n    "),
                                   fix: "raise `mtu:` of the hosts (the underlay) to at least the link MTU + \(Topology.gretapOverhead) (gretap) or + \(Topology.vxlanOverhead) (vxlan), or lower the links' `mtu:`; check that the underlay between the hosts carries frames that large")
                }
                probes = probePlan.count
            }
        } catch {
            let failures = done.reversed().flatMap { $0.rollBack() }
            if failures.isEmpty { store.remove(t.name) }
            if let i = error as? Interrupted {
                throw LabError("\(i): `up` of lab '\(t.name)' stopped" + (failures.isEmpty ? " and removed everything it had created"
                               : "; could not remove: \(failures.joined(separator: "; "))"),
                               fix: failures.isEmpty ? nil : "run `pathbed down \(t.name)`")
            }
            if !failures.isEmpty { throw LabError("\(error)\nand rolling back failed: \(failures.joined(separator: "; "))", fix: "run `pathbed down \(t.name)`") }
            throw error
        }
        journal.state = .up
        try store.save(journal)
        return UpResult(outcome: .built, operations: plan.operationCount, namespaces: journal.allNamespaces.count, seconds: elapsed(), recovered: recovered,
                        hostSeconds: hostSeconds, probes: probes)
    }

    /// The pid of the run that holds the lab, when that run is alive.
    static func liveRun(_ j: LabJournal) -> Int32? {
        guard let pid = j.runPID, kill(pid, 0) == 0, isPathbed(pid) else { return nil }
        return pid
    }

    /// What a dry run would undo of a run that did not end cleanly.
    static func leftoverNotes(_ j: LabJournal) -> [String] {
        guard liveRun(j) == nil else { return [] }
        return (j.runPID.map { ["a run (pid \($0)) did not end cleanly: would stop what it left running in the lab"] } ?? [])
            + (j.activeFaults ?? []).map { "\($0.host): \($0.action) was left by a run that did not finish: would undo it" }
    }

    /// After a run that did not end cleanly (killed): its processes in the lab are stopped on
    /// every host, its faults undone, its hold on the lab released. Returns what was done.
    func recoverFromDeadRun(_ j: inout LabJournal) throws -> [String] {
        var changes: [String] = []
        var dirty = false
        if let pid = j.runPID, Self.liveRun(j) == nil {
            dirty = true
            for host in (j.plan?.hosts.map(\.host) ?? Array(executors.keys)).sorted() {
                let n = try executor(host).stopProcesses(inLab: j.lab)
                if n > 0 { changes.append("\(host): stopped \(n) processes a run (pid \(pid)) that did not end cleanly left in the lab") }
            }
            j.runPID = nil
        }
        // The faults of a run that is alive are its own (a second `up` of the same file while
        // it plays must not undo them); only a dead run's, or those recorded without a run, are
        // leftovers.
        if let faults = j.activeFaults, !faults.isEmpty, Self.liveRun(j) == nil || Self.liveRun(j) == getpid() {
            // A run was killed mid-fault: its links come back up before anything else.
            for f in faults { try executor(f.host).revert(f.action) }
            changes += faults.map { "\($0.host): \($0.action) was left by a run that did not finish: undone" }
            j.activeFaults = nil
            dirty = true
        }
        if dirty { try store.save(j) }
        return changes
    }

    /// Records that this process's run holds the lab.
    func claimRun(_ j: inout LabJournal) throws {
        j.runPID = getpid()
        try store.save(j)
    }

    /// Ends this process's hold on the lab (when it still has the lab and holds it).
    public func releaseRun(_ lab: String) {
        guard let lock = try? store.lock(lab) else { return }
        defer { lock.release() }
        guard case var .ok(j) = store.load(lab), j.runPID == getpid() else { return }
        j.runPID = nil
        try? store.save(j)
    }

    static func isPathbed(_ pid: Int32) -> Bool {
        guard let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) else { return false }
        return comm.hasPrefix("pathbed")
    }

    static func namespacesByHost(_ plan: LabPlan) -> [String: [String]] {
        Dictionary(uniqueKeysWithValues: plan.hosts.map { ($0.host, $0.namespaces) })
    }

    /// Records links a run takes down (nil: none any more), so that a killed run's faults are undone by the next `up`.
    public func recordFaults(_ lab: String, _ faults: [ActiveFault]) {
        guard case var .ok(j) = store.load(lab) else { return }
        j.activeFaults = faults.isEmpty ? nil : faults
        try? store.save(j)
    }
}
