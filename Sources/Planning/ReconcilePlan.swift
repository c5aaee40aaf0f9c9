import TopologyModel

/// What `up` of a changed file does to a running lab, per host.
///
/// - A profile that changed on a link that stays is changed in place (`tc qdisc change`, or an
///   atomic `replace` for a new kind): traffic is never unshaped in between.
/// - A node whose other settings changed (addresses, routes, links, sysctls, MPTCP) is rebuilt:
///   its namespace is removed and created again, and so are the nodes wired straight to it,
///   whose routes and endpoints used the veths that go with it. Nodes on a bridge lose only a
///   bridge port, which is re-created.
/// - Added nodes are built; removed nodes are deleted; a namespace deleted by hand is rebuilt.
public struct ReconcilePlan: Sendable {
    public var host: String
    /// Namespaces removed first (rebuilt ones included).
    public var removeNamespaces: [String] = []
    /// Links deleted in namespaces that stay (bridges that are gone or changed).
    public var deleteLinks: [InterfaceRef] = []
    /// Operations of the new plan to apply, in plan order.
    public var operations: [LabOperation] = []
    /// Shaping changed in place: interface, old spec, new spec (nil: unshaped).
    public var profileChanges: [(InterfaceRef, QdiscSpec?, QdiscSpec?)] = []
    public var rebuilt: [String] = []
    /// Namespaces whose routes, rules, sysctls or MPTCP settings change in place.
    public var changedInPlace: [String] = []
    /// What changes in each of them, as people read it ("link eth3 added, routes +2 -1").
    public var inPlaceDetails: [String: String] = [:]
    public var added: [String] = []
    public var removed: [String] = []
    public var healed: [String] = []

    public var isEmpty: Bool { removeNamespaces.isEmpty && deleteLinks.isEmpty && operations.isEmpty && profileChanges.isEmpty }

    /// The changes as people read them.
    public var summary: [String] {
        var out: [String] = []
        func names(_ list: [String]) -> String { list.sorted().joined(separator: ", ") }
        if !added.isEmpty { out.append("\(host): add \(names(added))") }
        if !removed.isEmpty { out.append("\(host): remove \(names(removed))") }
        if !healed.isEmpty { out.append("\(host): rebuild \(names(healed)) (its namespace is gone)") }
        for ns in changedInPlace.sorted() { out.append("\(host): change \(ns) in place: \(inPlaceDetails[ns] ?? "routes, sysctls or MPTCP settings")") }
        if !rebuilt.isEmpty { out.append("\(host): rebuild \(names(rebuilt)) (its links or addresses changed, or it is wired to a node that was rebuilt)") }
        for l in deleteLinks { out.append("\(host): delete \(l)") }
        for (r, old, new) in profileChanges {
            func text(_ q: QdiscSpec?) -> String { q.map { "\($0.profile) (\($0.brief))" } ?? "unshaped" }
            out.append("\(host): change profile of \(r) in place: \(text(old)) -> \(text(new))")
        }
        if !operations.isEmpty { out.append("\(host): \(operations.count) operation\(operations.count == 1 ? "" : "s")") }
        return out
    }

    /// How one namespace goes from `removed` to `added` operations in place: the operations that
    /// undo the removed ones (the added ones are applied as the new plan has them). Nil when some
    /// change can only be made by rebuilding the namespace: a link, an address, a sysctl no longer
    /// set (its value before the lab is not known), MPTCP limits no longer set.
    ///
    /// A link added to a node that stays (to a new node, say) is made in place too: its veth,
    /// the address and `up` of its new interface. A link removed or changed rebuilds the node.
    static func inPlace(namespace ns: String, removed: Set<LabOperation>, added: Set<LabOperation>) -> [LabOperation]? {
        var undo: [LabOperation] = []
        let oldInterfaces = Set(removed.compactMap { op -> String? in
            if case let .createVeth(a, b, _, _) = op { return a.namespace == ns ? a.name : b.namespace == ns ? b.name : nil }
            return interface(op).flatMap { $0.namespace == ns ? $0.name : nil }
        })
        var newInterfaces: Set<String> = []
        for op in added { if case let .createVeth(a, b, _, _) = op { for r in [a, b] where r.namespace == ns { newInterfaces.insert(r.name) } } }
        guard newInterfaces.isDisjoint(with: oldInterfaces) else { return nil }
        for op in added {
            switch op {
            case .addRoute, .addRule, .setSysctl, .setMPTCPLimits, .addMPTCPEndpoint, .createVeth: continue
            case let .addAddress(r, _), let .setUp(r), let .enslave(r, _):
                guard r.namespace == ns, newInterfaces.contains(r.name) else { return nil }
            default: return nil
            }
        }
        for op in removed {
            switch op {
            case let .addRoute(ns, r): undo.append(.deleteRoute(namespace: ns, r))
            case let .addRule(ns, from, table, priority): undo.append(.deleteRule(namespace: ns, from: from, table: table, priority: priority))
            case let .addMPTCPEndpoint(ns, _, _, id, _): undo.append(.deleteMPTCPEndpoint(namespace: ns, id: id))
            case let .setSysctl(ns, key, _):
                guard added.contains(where: { if case let .setSysctl(n, k, _) = $0 { return n == ns && k == key } else { return false } }) else { return nil }
            case let .setMPTCPLimits(ns, _, _):
                guard added.contains(where: { if case let .setMPTCPLimits(n, _, _) = $0 { return n == ns } else { return false } }) else { return nil }
            default: return nil
            }
        }
        // Endpoints and rules go before the routes they use; every removal before any addition.
        func rank(_ op: LabOperation) -> Int {
            switch op { case .deleteMPTCPEndpoint: 0; case .deleteRule: 1; default: 2 }
        }
        return undo.sorted { (rank($0), $0.command) < (rank($1), $1.command) }
    }

    /// The in-place changes of one namespace, counted by kind.
    static func describe(namespace ns: String, removed: Set<LabOperation>, added: Set<LabOperation>) -> String {
        var parts: [String] = []
        let links = added.compactMap { op -> String? in
            if case let .createVeth(a, b, _, _) = op { return a.namespace == ns ? a.name : b.name } else { return nil }
        }.sorted()
        if !links.isEmpty { parts.append((links.count == 1 ? "link " : "links ") + links.joined(separator: ", ") + " added") }
        func count(_ kind: String, _ match: (LabOperation) -> Bool) {
            let plus = added.filter(match).count, minus = removed.filter(match).count
            guard plus + minus > 0 else { return }
            parts.append("\(kind) " + [plus > 0 ? "+\(plus)" : nil, minus > 0 ? "-\(minus)" : nil].compactMap { $0 }.joined(separator: " "))
        }
        count("routes") { if case .addRoute = $0 { true } else { false } }
        count("rules") { if case .addRule = $0 { true } else { false } }
        count("MPTCP endpoints") { if case .addMPTCPEndpoint = $0 { true } else { false } }
        let sysctls = Set(added.compactMap { op -> String? in if case let .setSysctl(_, k, _) = op { return k } else { return nil } }).sorted()
        if !sysctls.isEmpty { parts.append("sysctls " + sysctls.joined(separator: ", ")) }
        if added.contains(where: { if case .setMPTCPLimits = $0 { true } else { false } }) { parts.append("MPTCP limits") }
        return parts.joined(separator: "; ")
    }

    static func namespacesTouched(_ op: LabOperation) -> [String] {
        if case let .createVeth(a, b, _, _) = op { return [a.namespace, b.namespace] }
        return op.namespace.map { [$0] } ?? []
    }

    static func interface(_ op: LabOperation) -> InterfaceRef? {
        switch op {
        case let .enslave(r, _), let .addAddress(r, _), let .setUp(r), let .setQdisc(r, _), let .createBridge(r, _, _): return r
        default: return nil
        }
    }

    /// Computes the changes from `old` to `new` on one host, given the lab's namespaces there now.
    public static func compute(host: String, lab: String, old: HostPlan?, new: HostPlan, present: Set<String>) -> ReconcilePlan {
        var p = ReconcilePlan(host: host)
        let O = old?.operations ?? [], N = new.operations
        let oldNS = Set(old?.namespaces ?? []), newNS = Set(new.namespaces)
        let bridgeNS = Ownership.namespacePrefix + lab
        let kept = oldNS.intersection(newNS)
        let lost = kept.subtracting(present)
        func structure(_ ops: [LabOperation]) -> [String: Set<LabOperation>] {
            var m: [String: Set<LabOperation>] = [:]
            for op in ops {
                if case .setQdisc = op { continue }
                for ns in namespacesTouched(op) { m[ns, default: []].insert(op) }
            }
            return m
        }
        let so = structure(O), sn = structure(N)
        var rebuild = lost
        // Routes, rules, sysctls and MPTCP settings change in place; anything else rebuilds the node.
        var removals: [LabOperation] = []
        for ns in kept.subtracting(lost).sorted() where ns != bridgeNS && so[ns] != sn[ns] {
            let removed = (so[ns] ?? []).subtracting(sn[ns] ?? []), added = (sn[ns] ?? []).subtracting(so[ns] ?? [])
            if let undo = inPlace(namespace: ns, removed: removed, added: added) {
                removals += undo
                p.changedInPlace.append(ns)
                p.inPlaceDetails[ns] = describe(namespace: ns, removed: removed, added: added)
            } else {
                rebuild.insert(ns)
            }
        }
        // The bridge namespace: a bridge removed or changed is deleted; a new one is created.
        func bridges(_ ops: [LabOperation]) -> [String: LabOperation] {
            Dictionary(ops.compactMap { op in if case let .createBridge(r, _, _) = op { return (r.name, op) } else { return nil } }, uniquingKeysWith: { a, _ in a })
        }
        let oldBridges = bridges(O), newBridges = bridges(N)
        var remadeBridges: Set<String> = []
        if kept.contains(bridgeNS), !lost.contains(bridgeNS) {
            for (name, op) in oldBridges where newBridges[name] != op {
                p.deleteLinks.append(InterfaceRef(namespace: bridgeNS, name: name))
                if newBridges[name] != nil { remadeBridges.insert(name) }
            }
            for name in newBridges.keys where oldBridges[name] == nil { remadeBridges.insert(name) }
            // A veth pair between two bridges that the new plan does not make the same way (its
            // link removed or changed, or its bridges now one kernel bridge) is deleted: nothing
            // else would take it away, and it would keep joining the bridges.
            let newOps = Set(N)
            for op in O {
                if case let .createVeth(a, b, _, _) = op, a.namespace == bridgeNS, b.namespace == bridgeNS, !newOps.contains(op) {
                    p.deleteLinks.append(a)
                }
            }
        }
        // A node that loses a veth (its peer's namespace goes) gets the veth back, and the routes
        // the kernel flushed with it (those through that device or its subnets). A node with an
        // MPTCP endpoint on that device is rebuilt: the endpoint would keep the old device's index.
        let oldVeths = O.compactMap { op -> (InterfaceRef, InterfaceRef)? in if case let .createVeth(a, b, _, _) = op { return (a, b) } else { return nil } }
        var lostInterfaces: Set<InterfaceRef> = []
        var changed = true
        while changed {
            changed = false
            lostInterfaces = []
            let gone = rebuild.union(oldNS.subtracting(newNS))
            for (a, b) in oldVeths {
                for (here, there) in [(a, b), (b, a)] where gone.contains(there.namespace) && !gone.contains(here.namespace) && newNS.contains(here.namespace) {
                    let endpointOnIt = N.contains { if case let .addMPTCPEndpoint(ns, _, dev, _, _) = $0 { return ns == here.namespace && dev == here.name } else { return false } }
                    if endpointOnIt && here.namespace != bridgeNS {
                        rebuild.insert(here.namespace)
                        changed = true
                    } else {
                        lostInterfaces.insert(here)
                    }
                }
            }
        }
        var lostSubnets: [String: [(String, IPNetwork)]] = [:]
        for op in O { if case let .addAddress(r, a) = op, lostInterfaces.contains(r) { lostSubnets[r.namespace, default: []].append((r.name, a)) } }
        func flushedWith(_ op: LabOperation) -> Bool {
            guard case let .addRoute(ns, r) = op, let lost = lostSubnets[ns] else { return false }
            return lost.contains { name, net in r.device == name || r.via.map(net.contains) == true }
        }
        let removedNS = oldNS.subtracting(newNS)
        let addedNS = newNS.subtracting(oldNS)
        p.removeNamespaces = rebuild.union(removedNS).intersection(present).sorted { $0.count > $1.count }
        p.rebuilt = rebuild.subtracting(lost).sorted()
        p.changedInPlace = p.changedInPlace.filter { !rebuild.contains($0) }
        p.healed = lost.sorted()
        p.removed = removedNS.sorted()
        p.added = addedNS.sorted()
        let building = rebuild.union(addedNS)
        // Interfaces re-created: ends of veths with an end in a namespace being built, and re-made bridges.
        var remade: Set<InterfaceRef> = Set(remadeBridges.map { InterfaceRef(namespace: bridgeNS, name: $0) })
        for op in N {
            if case let .createVeth(a, b, _, _) = op, building.contains(a.namespace) || building.contains(b.namespace) { remade.insert(a); remade.insert(b) }
        }
        // The devices a removed namespace took with it are freed by the kernel after the deletion
        // returns: their ends here must be gone before they are made again under the same names.
        for r in lostInterfaces.sorted(by: { $0.description < $1.description }) { p.operations.append(.awaitGone(r)) }
        p.operations += removals.filter { !rebuild.contains($0.namespace ?? "") }
        let oldSet = Set(O)
        var oldQdisc: [InterfaceRef: QdiscSpec] = [:]
        for op in O { if case let .setQdisc(r, q) = op { oldQdisc[r] = q } }
        var newQdiscSeen: Set<InterfaceRef> = []
        for op in N {
            let touched = namespacesTouched(op)
            if touched.contains(where: building.contains) { p.operations.append(op); continue }
            if let r = interface(op), remade.contains(r) || lostInterfaces.contains(r) { p.operations.append(op); continue }
            if flushedWith(op) { p.operations.append(op); continue }
            if case let .enslave(_, bridge) = op, remadeBridges.contains(bridge) { p.operations.append(op); continue }
            if case let .setQdisc(r, q) = op {
                newQdiscSeen.insert(r)
                if oldQdisc[r] != q { p.profileChanges.append((r, oldQdisc[r], q)) }
                continue
            }
            if !oldSet.contains(op) { p.operations.append(op) }
        }
        // Profiles removed from links that stay: back to unshaped.
        for (r, q) in oldQdisc where !newQdiscSeen.contains(r) && !building.contains(r.namespace) && !remade.contains(r) && !lostInterfaces.contains(r) && newNS.contains(r.namespace) {
            p.profileChanges.append((r, q, nil))
        }
        p.profileChanges.sort { $0.0.description < $1.0.description }
        return p
    }
}
