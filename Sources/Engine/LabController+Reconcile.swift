import Foundation
import Hosts
import Planning
import TopologyModel

extension LabController {
    func reconcile(_ t: Topology, from oldPlan: LabPlan, to plan: LabPlan, digest: String, present: [String: [NamespaceState]],
                   previous: LabJournal, dryRun: Bool, progress: (String) -> Void, start: UInt64) throws -> UpResult {
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
        var journal = previous
        journal.state = .building
        journal.pid = getpid()
        journal.planDigest = digest
        journal.namespaces = Self.namespacesByHost(plan)
        journal.plan = plan
        journal.file = t.file
        try store.save(journal)
        do {
            for p in plans where !p.isEmpty {
                let e = try executor(p.host)
                try e.removeNamespaces(p.removeNamespaces)
                for l in p.deleteLinks { try e.deleteLink(l) }
                if !p.operations.isEmpty { try e.apply(p.operations, progress: { progress("\(p.host): \($0)/\(p.operations.count) operations") }, interrupted: interrupted) }
                for (r, old, new) in p.profileChanges { try e.setProfile(r, from: old, to: new) }
            }
        } catch {
            throw restore(previous, after: error, progress: progress)
        }
        journal.state = .up
        try store.save(journal)
        return UpResult(outcome: .reconciled, operations: count, namespaces: namespaceCount, seconds: elapsed(), changes: changes)
    }

    /// A change that failed midway: the lab is built again as it was before the change (from the
    /// plan the journal had), so that it is never left half changed. Returns the error to give.
    func restore(_ previous: LabJournal, after error: any Error, progress: (String) -> Void) -> LabError {
        let (problem, fix) = problemAndFix(error)
        guard let plan = previous.plan else { return LabError("changing lab '\(previous.lab)' in place failed: \(problem)", fix: fix) }
        progress("changing lab \(previous.lab) failed (\(problem)); building it again as it was")
        do {
            for h in plan.hosts { _ = try executor(h.host).removeLab(previous.lab, waitForKernel: true) }
            for h in plan.hosts { try executor(h.host).apply(h.operations, progress: { _ in }, interrupted: interrupted) }
            var j = previous
            j.state = .up
            j.pid = getpid()
            try store.save(j)
            return LabError("changing lab '\(previous.lab)' in place failed: \(problem); the lab was built again as it was before the change (\(previous.file))",
                            fix: fix ?? "fix what the error names and run `pathbed up` again")
        } catch let again {
            // Not even the lab as it was could be built: nothing is left half built.
            for h in plan.hosts { _ = try? executor(h.host).removeLab(previous.lab, waitForKernel: false) }
            store.remove(previous.lab)
            return LabError("changing lab '\(previous.lab)' in place failed: \(problem); building it again as it was failed too (\(problemAndFix(again).problem)), so it was removed",
                            fix: "`pathbed up \(previous.file)` builds it from scratch")
        }
    }
}
