import Foundation
import TopologyModel

/// The repository's root, found from this file's path, so tests read topologies/ and plugins/.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A lab of a client with two paths to a router and a server behind it, with `schedule` as its
/// fault schedule; written to `file` (default: a temporary file), so that paths resolve against it.
func twoPathLab(_ schedule: String, extra: String = "", file: String? = nil) throws -> Topology {
    let text = """
        name: rp
        profiles: { path: { rate: 10mbit }, slow: { rate: 2mbit } }
        nodes:
          client: { mptcp: { endpoints: { eth1: subflow, eth2: subflow } } }
          router: { forwarding: true }
          server: {}
        links:
          - { name: p1, endpoints: [router:eth1, client:eth1], profile: path, subnet: 10.0.1.0/24 }
          - { name: p2, endpoints: [router:eth2, client:eth2], profile: path, subnet: 10.0.2.0/24 }
          - { name: bb, endpoints: [router:eth3, server:eth0], subnet: 10.0.3.0/24 }
        \(extra)
        run: { duration: 200s, seed: 42 }
        schedule:
        \(schedule)
        """
    let path = file ?? FileManager.default.temporaryDirectory.appendingPathComponent("rp-\(UUID().uuidString).yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    defer { if file == nil { unlink(path) } }
    return try TopologyLoader.load(path: path)
}
