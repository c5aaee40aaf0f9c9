/// The file as written: the objects `TopologyDecoder` made from it (values checked for their
/// form only, references unresolved), where each value was written, and what the file said that
/// the objects alone do not keep. `TopologyValidator` turns it into a `Topology`: the lab as
/// resolved, with hosts bound, references checked, segments, addresses, tunnel keys, routes and
/// fault links worked out.
struct WrittenTopology {
    /// The objects as decoded: addresses, keys, hosts and fault links not yet resolved.
    var draft: Topology
    var file: String
    /// Where each path (`links[2].profile`) was written.
    var locations: [String: SourceLocation]
    /// Links whose profile was written `{forward: ..., reverse: ...}`.
    var directionalLinks: Set<Int>
    /// Nodes whose `source-routing` was written out (the rest get the default).
    var sourceRoutingWritten: Set<String>
    /// The `link:` text of each fault, by path (`schedule[3]`).
    var faultLinks: [String: String?]

    /// Where `path` was written, or the nearest enclosing path that was (the document itself for
    /// a key that is not there at all).
    func location(_ path: String) -> SourceLocation {
        var p = Substring(path)
        while true {
            if let l = locations[String(p)] { return l }
            guard let cut = p.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            p = p[..<cut]
        }
        return locations[""] ?? SourceLocation(file: file, line: 0, column: 0)
    }

    /// Whether the file wrote `path` at all.
    func wrote(_ path: String) -> Bool { locations[path] != nil }
}
