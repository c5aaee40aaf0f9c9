import Foundation
import Hosts
import Planning
import TopologyModel

extension LabController {
    func reconcile(_ t: Topology, from oldPlan: LabPlan, to plan: LabPlan, digest: String, present: [String: [NamespaceState]],
                   dryRun: Bool, progress: (String) -> Void, start: UInt64) throws -> UpResult {
        let oldHosts = Set(oldPlan.hosts.map(\.host)), newHosts = Set(plan.hosts.map(\.host))
        guard oldHosts == newHosts else {
            throw LabError("lab '\(t.name)' is up on hosts \(oldHosts.sorted().joined(separator: ", ")); the file now names \(newHosts.sorted().joined(separator: ", "))",
                           fix: "moving a lab between hosts is not done in place: run `pathbed down \(t.name)`, then `up`")
        }
        let plans = plan.hosts.map { h in
            ReconcilePlan.compute(host: h.host, lab: t.name, old: oldPlan.hosts.first { $0.host == h.host }, new: h,
                                  present: Set((present[h.host] ?? []).map(\.name)))
        }
        let changes = plans.flatMap(\.summary)
        let count = plans.reduce(0) { $0 + $1.operations.count + $1.profileChanges.count + $1.removeNamespaces.count + $1.deleteLinks.count }
        let namespaceCount = Self.namespacesByHost(plan).values.reduce(0) { $0 + $1.count }
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        if dryRun { return UpResult(outcome: .dryRun, operations: count, namespaces: namespaceCount, seconds: elapsed(), changes: changes) }
        try checkCapabilities(t, LabPlan(lab: plan.lab, hosts: plans.map { HostPlan(host: $0.host, reach: "", operations: $0.operations + $0.profileChanges.compactMap { c in c.2.map { .setQdisc(c.0, $0) } }) }))
        // From here the running lab differs from both files until the end: the journal says so.
        var journal = LabJournal(lab: t.name, file: t.file, state: .building, planDigest: digest, namespaces: Self.namespacesByHost(plan),
                                 plan: plan, pid: getpid(), started: Date())
        try store.save(journal)
        do {
            for p in plans where !p.isEmpty {
                let e = try executor(p.host)
                try e.removeNamespaces(p.removeNamespaces)
                for l in p.deleteLinks { try e.deleteLink(l) }
                try e.apply(p.operations, progress: { progress("\(p.host): \($0)/\(p.operations.count) operations") }, interrupted: interrupted)
                for (r, old, new) in p.profileChanges { try e.setProfile(r, from: old, to: new) }
            }
        } catch {
            // Half changed: the journal says `building`, so the next `up` rebuilds the lab from scratch.
            throw LabError("changing lab '\(t.name)' in place stopped midway: \(error)",
                           fix: "run `pathbed up \(t.file)` to build it again from scratch, or `pathbed down \(t.name)` to remove it")
        }
        journal.state = .up
        try store.save(journal)
        return UpResult(outcome: .reconciled, operations: count, namespaces: namespaceCount, seconds: elapsed(), changes: changes)
    }
}
