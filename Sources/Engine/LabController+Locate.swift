import Foundation
import Hosts
import Planning
import TopologyModel

extension LabController {
    /// Labs known here: from journals and from namespaces named like a lab's.
    public func labs() -> [String] {
        var names = Set(store.labs())
        for e in executors.values {
            for ns in (try? e.namespaceNames()) ?? [] {
                if let lab = Ownership.lab(ofNamespace: ns), LabName.problem(lab) == nil { names.insert(lab) }
            }
        }
        return names.sorted()
    }

    /// The lab, host and namespace of `node`, from the journals (any host) and this machine's
    /// namespaces; looks through every lab that is up when `lab` is nil.
    public static func locate(node: String, lab: String?, store: StateStore = StateStore()) throws -> (lab: String, host: String, namespace: String) {
        if let lab, let problem = LabName.problem(lab) { throw LabError(problem) }
        var found: [(String, String, String)] = []
        let local = Set((try? forThisMachine(store: store).executors["local"]?.namespaceNames()) ?? [])
        let labs = lab.map { [$0] } ?? forThisMachine(store: store).labs()
        for l in labs {
            let ns = "pb.\(l).\(node)"
            if let plan = store.load(l).journal?.plan, let h = plan.hosts.first(where: { $0.namespaces.contains(ns) }) {
                found.append((l, h.host, ns))
            } else if local.contains(ns) {
                found.append((l, "local", ns))
            }
        }
        if found.count == 1 { return found[0] }
        if found.isEmpty {
            let up = forThisMachine(store: store).labs()
            throw LabError(lab.map { "lab '\($0)' has no node '\(node)' up" } ?? "no lab that is up has a node '\(node)'",
                           fix: up.isEmpty ? "start a lab with `pathbed up FILE`" : "labs up: \(up.joined(separator: ", ")); see `pathbed status`")
        }
        throw LabError("node '\(node)' exists in several labs: \(found.map(\.0).joined(separator: ", "))", fix: "name one with --lab")
    }
}
