import Foundation
import Netlink
import TopologyModel

/// Why `up`, `down` or `exec` refused or failed, and what to do.
public struct LabError: Error, CustomStringConvertible {
    public var message: String
    public var fix: String?
    public init(_ message: String, fix: String? = nil) { self.message = message; self.fix = fix }
    public var description: String { "error: \(message)" + (fix.map { "\n    fix: \($0)" } ?? "") }
}

/// up / down / status for labs on this machine.
public enum LabController {
    public struct UpResult {
        public var changed: Bool
        public var operations: Int
        public var namespaces: Int
        public var seconds: Double
    }

    static func namespacesOf(_ lab: String) -> [String] {
        NetworkNamespace.list().filter { $0 == "pb.\(lab)" || $0.hasPrefix("pb.\(lab).") }
    }

    static func digest(_ plan: LabPlan) -> String {
        let e = JSONEncoder(); e.outputFormatting = .sortedKeys
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in (try? e.encode(plan)) ?? Data() { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    /// Builds the lab, or finds it already built. Validates everything before the first change,
    /// and removes what it created if any step fails.
    public static func up(_ t: Topology, capabilities: () -> Capabilities = CapabilityProbe.run, progress: (String) -> Void = { _ in }) throws -> UpResult {
        let start = DispatchTime.now().uptimeNanoseconds
        guard t.hosts.count == 1, t.hosts[0].isLocal else {
            throw LabError("lab '\(t.name)' spans \(t.hosts.count) hosts (\(t.hosts.map(\.name).joined(separator: ", "))); this release builds labs on this machine only",
                           fix: "`pathbed plan \(t.file)` shows what each host would get; multi-host labs come with the agent")
        }
        guard geteuid() == 0 else { throw LabError("building a lab needs root", fix: "run as root (sudo pathbed up \(t.file))") }
        guard let lock = LabLock(lab: t.name) else {
            throw LabError("another pathbed is working on lab '\(t.name)' right now", fix: "wait for it to finish, or stop it")
        }
        defer { withExtendedLifetime(lock) {} }
        let plan = Planner.plan(t)
        let ops = plan.hosts[0].operations
        let digest = digest(plan)
        let existing = namespacesOf(t.name)
        if let j = LabJournal.load(t.name) {
            switch j.state {
            case .up where j.planDigest == digest && Set(j.namespaces).isSubset(of: Set(existing)):
                return UpResult(changed: false, operations: 0, namespaces: j.namespaces.count, seconds: 0)
            case .up where j.planDigest == digest:
                throw LabError("lab '\(t.name)' is up but \(Set(j.namespaces).subtracting(existing).count) of its namespaces are gone",
                               fix: "run `pathbed down \(t.name)`, then `pathbed up` again")
            case .up:
                throw LabError("lab '\(t.name)' is already up from a different topology (\(j.file))",
                               fix: "run `pathbed down \(t.name)` first; changing a running lab in place is not supported yet")
            case .building:
                throw LabError("an earlier `up` of lab '\(t.name)' (pid \(j.pid)) did not finish", fix: "run `pathbed down \(t.name)` to remove what it left, then `up` again")
            }
        } else if !existing.isEmpty {
            throw LabError("namespaces of lab '\(t.name)' exist without a journal: \(existing.prefix(3).joined(separator: ", "))\(existing.count > 3 ? ", ..." : "")",
                           fix: "run `pathbed down \(t.name)` to remove them")
        }
        let missing = capabilities().missing(for: t, plan: plan)
        if !missing.isEmpty {
            throw LabError("lab '\(t.name)' needs what this kernel lacks:\n" + missing.map { "    - \($0.name): \($0.detail); \($0.fix)" }.joined(separator: "\n"),
                           fix: "`pathbed doctor \(t.file)` shows every check; nothing was changed")
        }
        let namespaces = ops.compactMap { op -> String? in if case let .createNamespace(n) = op { return n } else { return nil } }
        var journal = LabJournal(lab: t.name, file: t.file, state: .building, planDigest: digest, namespaces: namespaces, pid: getpid(), started: Date())
        try journal.save()
        let executor = try LocalExecutor()
        do {
            try executor.apply(ops) { done in progress("\(done)/\(ops.count) operations") }
        } catch {
            executor.rollBack()
            LabJournal.remove(t.name)
            throw error
        }
        journal.state = .up
        try journal.save()
        return UpResult(changed: true, operations: ops.count, namespaces: namespaces.count,
                        seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// Removes everything lab `lab` created: the namespaces in its journal and any namespace
    /// carrying its tag (`pb.LAB`, `pb.LAB.*`), also after an interrupted `up`. Returns how many.
    @discardableResult
    public static func down(_ lab: String) throws -> Int {
        guard geteuid() == 0 else { throw LabError("removing a lab needs root", fix: "run as root (sudo pathbed down \(lab))") }
        guard let lock = LabLock(lab: lab) else {
            if let j = LabJournal.load(lab), j.state == .building, kill(j.pid, 0) == 0 {
                throw LabError("`up` of lab '\(lab)' is still running (pid \(j.pid))", fix: "wait for it, or stop it (kill \(j.pid)) and run down again")
            }
            throw LabError("another pathbed is working on lab '\(lab)'", fix: "wait for it to finish")
        }
        defer { withExtendedLifetime(lock) {} }
        let names = Set((LabJournal.load(lab)?.namespaces ?? []) + namespacesOf(lab)).intersection(NetworkNamespace.list())
        var failures: [String] = []
        // Programs still running in the lab (workloads, `pathbed exec`) would keep its namespaces alive.
        stopProcesses(in: names.sorted())
        // Node namespaces first, then the bridge namespace; the kernel frees their devices in the background.
        for ns in names.sorted(by: { $0.count > $1.count }) {
            do { try NetworkNamespace.delete(ns) } catch { failures.append("\(error)") }
        }
        if !failures.isEmpty { throw LabError("could not remove everything of lab '\(lab)':\n    " + failures.joined(separator: "\n    ")) }
        LabJournal.remove(lab)
        unlink("\(LabJournal.directory)/\(lab).lock")
        return names.count
    }

    /// SIGTERM to every process in the namespaces, SIGKILL to those still there after 2 s.
    static func stopProcesses(in namespaces: [String]) {
        var pids = namespaces.flatMap(NetworkNamespace.pids)
        guard !pids.isEmpty else { return }
        for p in pids { kill(p, SIGTERM) }
        let deadline = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
        while !pids.isEmpty, DispatchTime.now().uptimeNanoseconds < deadline {
            usleep(20_000)
            pids = pids.filter { kill($0, 0) == 0 && !isZombie($0) }
        }
        for p in pids { kill(p, SIGKILL) }
    }

    static func isZombie(_ pid: pid_t) -> Bool {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return true }
        return s[s.index(close, offsetBy: 2)...].hasPrefix("Z")
    }

    /// Labs known here: from journals and from tagged namespaces.
    public static func labs() -> [String] {
        var names = Set(LabJournal.labs())
        for ns in NetworkNamespace.list() where ns.hasPrefix("pb.") {
            names.insert(String(ns.dropFirst(3).split(separator: ".").first ?? ""))
        }
        return names.filter { !$0.isEmpty }.sorted()
    }

    /// The namespace of `node`, looking through the labs that are up when `lab` is nil.
    public static func namespace(node: String, lab: String?) throws -> String {
        let candidates = (lab.map { [$0] } ?? labs()).filter { NetworkNamespace.list().contains("pb.\($0).\(node)") }
        if candidates.count == 1 { return "pb.\(candidates[0]).\(node)" }
        if candidates.isEmpty {
            let up = labs()
            throw LabError(lab.map { "lab '\($0)' has no node '\(node)' up" } ?? "no lab that is up has a node '\(node)'",
                           fix: up.isEmpty ? "start a lab with `pathbed up FILE`" : "labs up: \(up.joined(separator: ", ")); see `pathbed status`")
        }
        throw LabError("node '\(node)' exists in several labs: \(candidates.joined(separator: ", "))", fix: "name one with --lab")
    }
}
