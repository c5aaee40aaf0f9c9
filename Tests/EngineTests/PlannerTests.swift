import Foundation
import Testing
@testable import Engine
import TopologyModel

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
func topology(_ name: String) throws -> Topology { try TopologyLoader.load(path: repositoryRoot.appendingPathComponent("topologies/\(name)").path) }

@Suite struct PlannerTests {
    @Test func twoVMPlanHasTunnelsOnBothHosts() throws {
        let plan = Planner.plan(try topology("thesis-two-vms.yaml"))
        #expect(plan.hosts.map(\.host) == ["mptcp-vm", "plain-vm"])
        var keys: [UInt32] = []
        for h in plan.hosts {
            let gretaps = h.operations.compactMap { op -> (InterfaceRef, IPAddress, IPAddress, UInt32, UInt32)? in
                if case let .createGretap(r, local, remote, key, mtu, _) = op { return (r, local, remote, key, mtu) } else { return nil }
            }
            #expect(gretaps.count == 1, "\(h.host)")
            #expect(gretaps.first?.4 == 1500)
            keys += gretaps.map(\.3)
            let underlay = h.host == "mptcp-vm" ? "192.168.56.10" : "192.168.56.11"
            #expect(h.operations.first == .setUnderlayMTU(interface: nil, address: IPAddress(underlay), mtu: 5000))
        }
        #expect(Set(keys).count == 1, "both ends of a tunnel share its key")
        let mptcpVM = plan.hosts[0].operations, plainVM = plan.hosts[1].operations
        #expect(mptcpVM.contains(.createNamespace(name: "pb.thesis", lab: "thesis")))
        #expect(mptcpVM.contains(.createNamespace(name: "pb.thesis.client", lab: "thesis")))
        #expect(plainVM.contains(.createNamespace(name: "pb.thesis.server", lab: "thesis")))
        #expect(!plainVM.contains(.createNamespace(name: "pb.thesis.client", lab: "thesis")))
        // The plain VM's lab namespaces get MPTCP off, and nothing else about MPTCP.
        #expect(plainVM.contains(.disableMPTCP(namespace: "pb.thesis.server")))
        #expect(plainVM.filter { $0.command.contains("mptcp") } == [.disableMPTCP(namespace: "pb.thesis.server")])
        #expect(mptcpVM.contains(.createVeth(InterfaceRef(namespace: "pb.thesis.router", name: "wlan0"),
                                             peer: InterfaceRef(namespace: "pb.thesis.client", name: "wlan0"), mtu: 1500,
                                             group: Ownership.group(lab: "thesis"))))
    }

    @Test func operationsComeInDependencyOrder() throws {
        for name in ["thesis-two-vms.yaml", "thesis-one-machine.yaml", "two-paths.yaml"] {
            for h in Planner.plan(try topology(name)).hosts {
                let ranks = h.operations.map(\.phaseRank)
                #expect(ranks == ranks.sorted(), "\(name) \(h.host)")
            }
        }
    }

    @Test func sourceRoutingForMultihomedMPTCPClient() throws {
        let ops = Planner.plan(try topology("two-paths.yaml")).hosts[0].operations.map(\.command)
        #expect(ops.contains("ip -n pb.two-paths.client rule add from 10.0.1.2 table 100 priority 1000"))
        #expect(ops.contains("ip -n pb.two-paths.client rule add from 10.0.2.2 table 101 priority 1001"))
        #expect(ops.contains("ip -n pb.two-paths.client route add default via 10.0.2.1 dev eth2 table 101"))
        #expect(ops.contains("ip -n pb.two-paths.client mptcp endpoint add 10.0.2.2 dev eth2 id 2 subflow"))
    }

    @Test func queuesFollowTheBandwidthDelayProduct() throws {
        var lte = LinkProfile(name: "lte", location: SourceLocation(file: "", line: 0, column: 0))
        lte.rate = try Bitrate.parse("10mbit").get()
        lte.delay = try Duration.parse("50ms").get()
        let q = try #require(QueueSizing.qdisc(for: lte, mtu: 1500))
        #expect(q.kinds == ["htb", "netem"])
        // 10 Mbit/s for 50 ms is 42 frames in flight; a standing queue of one BDP (100 ms) is 83.
        #expect(q.netem.map { Int($0.limitPackets) } == 42 + 83)
        var fast = lte
        fast.rate = try Bitrate.parse("1gbit").get()
        #expect(try #require(QueueSizing.qdisc(for: fast, mtu: 1500)?.netem?.limitPackets) > 10 * 125)
        var rateOnly = LinkProfile(name: "r", location: lte.location)
        rateOnly.rate = lte.rate
        let r = try #require(QueueSizing.qdisc(for: rateOnly, mtu: 1500))
        #expect(r.kinds == ["tbf"] && r.limitBytes == UInt32(QueueSizing.minimumPackets * 1514))
    }

    @Test func oneWayProfileShapesOneEnd() throws {
        let yaml = """
            name: oneway
            profiles: { up: { rate: 1mbit, direction: reverse } }
            nodes: { a: {}, b: {} }
            links: [ { endpoints: [a:eth0, b:eth0], profile: up } ]
            """
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "oneway.yaml")
        let qdiscs = Planner.plan(t).hosts[0].operations.compactMap { op -> String? in
            if case let .setQdisc(r, _) = op { return r.namespace } else { return nil }
        }
        #expect(qdiscs == ["pb.oneway.b"])
    }

    @Test func jsonPlanRoundTrips() throws {
        let plan = Planner.plan(try topology("thesis-two-vms.yaml"))
        let data = try JSONEncoder().encode(plan)
        let back = try JSONDecoder().decode(LabPlan.self, from: data)
        #expect(back.hosts.map(\.operations) == plan.hosts.map(\.operations))
    }
}
