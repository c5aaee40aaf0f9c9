import Foundation
import Testing
@testable import Planning
import TopologyModel

/// A Linux bridge takes at most 1023 ports (port numbers 1 to BR_MAX_PORTS - 1), and a flood past 256 of them in a chain
/// overruns the kernel's backlog: merged bridges are split at 256 ports, and a bridge written with more than 1023 is
/// refused by validation.
@Suite struct BridgePortTests {
    @Test func aLongLineIsSeveralKernelBridgesOfAtMost256Ports() throws {
        let yaml = TopologyGenerator.linear(switches: 3000, hostsPerSwitch: 1, TopologyGenerator.Options(name: "l3000"))
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "l3000.yaml")
        let plan = Planner.plan(t).hosts[0].operations
        var ports: [String: Int] = [:]
        for op in plan { if case let .enslave(_, bridge) = op { ports[bridge, default: 0] += 1 } }
        // 3000 node ports and a pair of ports per join, 256 at most per bridge: 12 bridges.
        #expect(ports.count == 12, "\(ports.count) kernel bridges")
        #expect(ports.values.allSatisfy { $0 <= Planner.mergedBridgePorts }, "\(ports.values.sorted())")
        #expect(ports.values.reduce(0, +) == 3000 + 2 * (ports.count - 1), "every node, and a veth pair between neighbours")
    }

    @Test func aBridgeWrittenWithMoreThan1023PortsIsRefused() throws {
        var yaml = "name: wide\nbridges: { s: {} }\nnodes:\n"
        for i in 0..<1024 { yaml += "  n\(i): {}\n" }
        yaml += "links:\n"
        for i in 0..<1024 { yaml += "  - { endpoints: [n\(i):eth0, s] }\n" }
        #expect { try TopologyLoader.load(data: Data(yaml.utf8), file: "wide.yaml") } throws: { e in
            let d = (e as? TopologyErrors)?.diagnostics ?? []
            return d.count == 1 && d[0].message.contains("more than 1023 ports") && d[0].location.line == 2052
        }
    }
}
