import Foundation
import Hosts
import Planning
import TopologyModel

/// A lab as the journal and the kernel describe it together, with every disagreement named.
public struct LabStatus: Sendable {
    public enum State: String, Sendable { case up, building, degraded, orphaned, unknown, absent = "not here" }
    public var lab: String
    public var state: State
    public var file: String?
    /// Namespaces per host, with their interfaces (nil when they could not be read).
    public var namespaces: [(host: String, name: String, interfaces: [InterfaceState]?)] = []
    /// What is wrong, each with what to do.
    public var problems: [String] = []
    /// Why some detail is missing (not root, say).
    public var notes: [String] = []
}

extension LabController {
    public func status(_ lab: String) -> LabStatus {
        var s = LabStatus(lab: lab, state: .unknown)
        if let problem = LabName.problem(lab) { s.problems.append(problem); return s }
        let journal = store.load(lab)
        var present: [String: [NamespaceState]] = [:]
        var unreachable: [String] = []
        for e in executors.values.sorted(by: { $0.host < $1.host }) {
            do { present[e.host] = try e.namespaces(of: lab) } catch {
                unreachable.append(e.host)
                s.problems.append("host \(e.host) cannot be read: \(error); if it is gone for good, `pathbed down \(lab) --forget-unreachable` removes the rest of the lab and forgets it")
            }
        }
        let all = present.values.flatMap { $0 }
        let untagged = all.filter { !$0.tagged && !$0.placeholder }.map(\.name)
        let root = geteuid() == 0
        if !root { s.notes.append("not root: interfaces, qdiscs and ownership tags cannot be read (run as root for them)") }
        if root, !untagged.isEmpty {
            s.problems.append("named like this lab's but not made by it (no tag): \(untagged.joined(separator: ", ")); Pathbed leaves them alone")
        }
        switch journal {
        case let .unreadable(why):
            s.state = .unknown
            s.problems.append("the journal cannot be read: \(why); `pathbed down \(lab)` removes what is tagged as the lab's")
        case .missing:
            // Only what carries the lab's tag is the lab's: namespaces named like it without the
            // tag are someone else's, said above, and no reason to call the lab orphaned.
            let tagged = all.filter(\.tagged)
            s.state = tagged.isEmpty ? (unreachable.isEmpty ? .absent : .unknown) : .orphaned
            if !tagged.isEmpty { s.problems.append("namespaces without a journal (an `up` killed before it wrote one, or a removed state directory); `pathbed down \(lab)` removes them") }
            else if unreachable.isEmpty { s.problems.append("no lab '\(lab)' is up here: no journal and no namespace of it (`pathbed status` lists the labs)") }
        case let .ok(j):
            s.file = j.file
            let there = Set(all.map(\.name))
            let missing = j.allNamespaces.filter { !there.contains($0) }
            if let pid = j.runPID, LabController.liveRun(j) == nil {
                s.problems.append("a run of it (pid \(pid)) ended without cleaning up (killed): what it left running and any fault it had in force are undone by the next `pathbed up \(j.file)` or `pathbed down \(lab)`")
            }
            if j.state == .building {
                s.state = .building
                let alive = kill(j.pid, 0) == 0
                s.problems.append(alive ? "`up` (pid \(j.pid)) is building it now" : "an `up` (pid \(j.pid)) stopped before it finished; `pathbed up \(j.file)` completes it, `pathbed down \(lab)` removes it")
            } else if !unreachable.isEmpty {
                s.state = .unknown
            } else if !missing.isEmpty {
                s.state = .degraded
                s.problems.append("\(missing.count) of its \(j.allNamespaces.count) namespaces are gone (\(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", ..." : "")); `pathbed up \(j.file)` rebuilds them")
            } else {
                s.state = .up
            }
        }
        for e in executors.values.sorted(by: { $0.host < $1.host }) {
            // Each host's own namespaces (hosts that share a kernel, as in tests, see each other's).
            let mine = journal.journal?.namespaces[e.host].map(Set.init)
            for ns in present[e.host] ?? [] where (ns.tagged || !root) && (mine?.contains(ns.name) ?? true) {
                s.namespaces.append((e.host, ns.name, root ? try? e.interfaces(in: ns.name) : nil))
            }
        }
        return s
    }
}
