/// Disjoint sets of names (union-find with path compression): the layer-2 segments validation
/// works out, and the bridges the planner makes as one. Without path compression a line of
/// bridges made each lookup walk the whole line (linear 20000 took 82 s to validate).
public struct DisjointSets {
    private var parent: [String: String] = [:]

    public init(_ names: some Sequence<String>) { for n in names { parent[n] = n } }

    public func contains(_ name: String) -> Bool { parent[name] != nil }

    /// The name that stands for `name`'s set (`name` itself for a name it does not hold).
    public mutating func find(_ name: String) -> String {
        var root = name
        while let p = parent[root], p != root { root = p }
        var x = name
        while let p = parent[x], p != root { parent[x] = root; x = p }
        return root
    }

    /// Joins the sets of `a` and `b`; of their two roots, `keep(rootA, rootB)` stays the root.
    public mutating func union(_ a: String, _ b: String, keep: (String, String) -> String = { _, b in b }) {
        let (ra, rb) = (find(a), find(b))
        guard ra != rb else { return }
        if keep(ra, rb) == ra { parent[rb] = ra } else { parent[ra] = rb }
    }
}
