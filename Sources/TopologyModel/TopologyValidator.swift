/// Checks a decoded topology as a whole and resolves it: hosts, references, segments, addresses,
/// MTUs, tunnel keys, MPTCP endpoints, routes, workloads and the fault schedule.
struct TopologyValidator {
    var topology: Topology
    let written: WrittenTopology
    let reader: YAMLReader

    /// Bytes a gretap tunnel adds to an inner frame over IPv4 with a key:
    /// outer IPv4 header 20 + GRE header 4 + key 4 + inner Ethernet header 14.
    static let greOverhead = Topology.gretapOverhead
    static let interfaceNameLimit = 15
    static let defaultHostName = "local"

    /// Positions by name: names do not change during validation, and lookups by scanning
    /// would make validation quadratic in the size of the file.
    let nodeIndex: [String: Int], bridgeIndex: [String: Int], profileIndex: [String: Int]

    init(_ written: WrittenTopology, reader: YAMLReader) {
        // The lab as resolved starts from the file as written; every value the file left out
        // holds a place until the checks below fill it in (hosts, link names and ends, addresses,
        // tunnel keys, source routing, fault links). `written.links[i]` is `topology.links[i]` as
        // written, and so for nodes, bridges and faults.
        let topology = Topology(
            name: written.name, description: written.description, file: written.file, hosts: written.hosts, profiles: written.profiles,
            nodes: written.nodes.map {
                Node(name: $0.name, location: $0.location, host: $0.host ?? "", forwarding: $0.forwarding, routes: $0.routes, mptcp: $0.mptcp,
                     congestionControl: $0.congestionControl, sourceRouting: $0.sourceRouting ?? false, sysctls: $0.sysctls)
            },
            bridges: written.bridges.map { Bridge(name: $0.name, location: $0.location, host: $0.host ?? "", subnet: $0.subnet, stp: $0.stp) },
            links: written.links.map {
                Link(index: $0.index, name: $0.name ?? "", location: $0.location, endpoints: $0.endpoints, forwardProfile: $0.forwardProfile,
                     reverseProfile: $0.reverseProfile, subnet: $0.subnet, mtu: $0.mtu ?? 1500, hosts: [], tunnelKey: nil,
                     tunnel: $0.tunnel ?? written.tunnel ?? .gretap, merge: $0.merge ?? true, capture: $0.capture)
            },
            workloads: [], schedule: [], run: written.run, tunnel: written.tunnel ?? .gretap)
        self.topology = topology; self.written = written; self.reader = reader
        func index(_ names: [String]) -> [String: Int] { Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a }) }
        nodeIndex = index(topology.nodes.map(\.name))
        bridgeIndex = index(topology.bridges.map(\.name))
        profileIndex = index(topology.profiles.map(\.name))
    }

    func node(_ name: String) -> Node? { nodeIndex[name].map { topology.nodes[$0] } }
    func bridge(_ name: String) -> Bridge? { bridgeIndex[name].map { topology.bridges[$0] } }
    func profile(_ name: String) -> LinkProfile? { profileIndex[name].map { topology.profiles[$0] } }

    func error(_ path: String, _ message: String, hint: String? = nil) {
        reader.error(at: written.location(path), path, message, hint: hint)
    }

    mutating func validate() -> Topology {
        resolveHosts()
        checkNameClashes()
        checkProfiles()
        let interfaces = resolveLinks()
        assignAddresses()
        checkMTUs()
        resolveNodes(interfaces: interfaces)
        checkWorkloads()
        checkSchedule()
        return topology
    }
}
