import Foundation
import Testing
import Yams
@testable import TopologyModel

/// The file as written and the lab as resolved are two types: what the file left out is nil in
/// the first and filled in (or refused) in the second.
@Suite struct WrittenTopologyTests {
    static let yaml = """
        name: two
        nodes:
          a: { mptcp: { endpoints: { eth0: subflow, eth1: subflow } } }
          b: { source-routing: false, mptcp: { endpoints: { eth0: subflow, eth1: subflow } } }
        links:
          - { endpoints: [a:eth0, b:eth0], subnet: 10.0.1.0/24 }
          - { name: second, endpoints: [a:eth1, b:eth1], subnet: 10.0.2.0/24, mtu: 9000 }
        """

    func written(_ text: String) throws -> WrittenTopology {
        let reader = YAMLReader(file: "two.yaml")
        let root = try #require(reader.parse(Data(text.utf8)))
        var decoder = TopologyDecoder(reader: reader)
        return decoder.decode(root)
    }

    @Test func whatTheFileLeftOutIsNilAsWrittenAndResolvedAfter() throws {
        let w = try written(Self.yaml)
        #expect(w.hosts.isEmpty && w.nodes.allSatisfy { $0.host == nil })
        #expect(w.nodes.map(\.sourceRouting) == [nil, false])
        #expect(w.links.map(\.name) == [nil, "second"] && w.links.map(\.mtu) == [nil, 9000])
        #expect(w.links[0].endpoints.allSatisfy { $0.address == nil }, "addresses are drawn by validation")
        let t = try TopologyLoader.load(data: Data(Self.yaml.utf8), file: "two.yaml")
        #expect(t.hosts.map(\.name) == ["local"] && t.nodes.allSatisfy { $0.host == "local" })
        #expect(t.nodes.map(\.sourceRouting) == [true, false], "the default for an MPTCP node with two addresses; false as written")
        #expect(t.links.map(\.name) == ["a:eth0", "second"] && t.links.map(\.mtu) == [1500, 9000])
        #expect(t.links[0].endpoints.map { $0.address?.description } == ["10.0.1.1/24", "10.0.1.2/24"])
        #expect(t.links.allSatisfy { $0.hosts == ["local", "local"] })
    }
}
