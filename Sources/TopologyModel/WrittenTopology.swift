/// The file as written: what `TopologyDecoder` made of it (each value checked for its form only,
/// references unresolved), and where each value was written. A value the file may leave out is
/// optional here, so "not written" is never mistaken for a default.
///
/// `TopologyValidator` turns it into a `Topology`, the lab as resolved: hosts bound, names
/// defaulted, references checked, segments, addresses, tunnel keys, source routing and fault
/// links worked out. Nothing downstream of validation sees this type.
struct WrittenTopology {
    var name: String
    var description: String?
    var file: String
    /// Where relative paths (plugins, traces) are taken from, when not the file itself: a
    /// study's variant is written elsewhere, yet names what its base names.
    var pathsRelativeTo: String?
    /// Hosts as declared (none: the lab runs on this machine).
    var hosts: [Host] = []
    var profiles: [LinkProfile] = []
    var nodes: [WrittenNode] = []
    var bridges: [WrittenBridge] = []
    var links: [WrittenLink] = []
    var workloads: [WrittenWorkload] = []
    var schedule: [WrittenFault] = []
    var run = RunSettings()
    var tunnel: TunnelKind?
    /// Where each path (`links[2].profile`) was written.
    var locations: [String: SourceLocation] = [:]

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

/// A node as written: no host bound, source routing as written (nil: the default applies).
struct WrittenNode {
    var name: String
    var location: SourceLocation
    var host: String?
    var forwarding: Bool?
    var routes: [Route] = []
    var mptcp: MPTCPSettings?
    var congestionControl: String?
    var sourceRouting: Bool?
    var sysctls: [Sysctl] = []
}

/// A bridge as written: no host bound.
struct WrittenBridge {
    var name: String
    var location: SourceLocation
    var host: String?
    var subnet: IPNetwork?
    var stp = false
}

/// A link as written: no name unless given, ends not yet bound to hosts or addressed.
struct WrittenLink {
    /// Position in the file's `links:` list, from 0.
    var index: Int
    var name: String?
    var location: SourceLocation
    var endpoints: [Endpoint] = []
    var forwardProfile: String?
    var reverseProfile: String?
    /// The profile was written per direction (`{forward: ..., reverse: ...}`).
    var directional = false
    var subnet: IPNetwork?
    var mtu: Int?
    var merge: Bool?
    var tunnel: TunnelKind?
    var capture = false
}

/// A workload as written, with its place in the file (a broken one before it is not in the list).
struct WrittenWorkload {
    /// Position in the file's `workloads:` list, from 0.
    var index: Int
    var name: String
    var location: SourceLocation
    var plugin: String
    var client: String?
    var server: String?
    var target: IPAddress?
    var node: String?
    var mptcp = false
    var start = Duration.zero
    var duration: Duration?
    var options: JSONValue?
}

/// A fault as written: its link as the text the file gave (a link's name or `node:interface`),
/// its options as raw values.
struct WrittenFault {
    /// Position in the file's `schedule:` list, from 0.
    var index: Int
    var location: SourceLocation
    var at = Duration.zero
    var kind: FaultEvent.Name
    var link: String?
    var nodes: [String] = []
    var duration: Duration?
    var every: Duration?
    var count = 1
    var random: FaultEvent.Spacing?
    var profile: String?
    var loss: Percent?
    var plugin: String?
    var options: JSONValue?
}
