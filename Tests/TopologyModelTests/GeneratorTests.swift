import Foundation
import Testing
@testable import TopologyModel

@Suite struct GeneratorTests {
    @Test func linearMatchesMininetShape() throws {
        let yaml = TopologyGenerator.linear(switches: 100, TopologyGenerator.Options(name: "linear100"))
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "linear100.yaml")
        #expect(t.nodes.count == 100)
        #expect(t.bridges.count == 100)
        #expect(t.links.count == 199)
        // One segment, so all 100 nodes share the subnet and get distinct addresses.
        let addresses = Set(t.links.flatMap(\.endpoints).compactMap(\.address))
        #expect(addresses.count == 100)
    }

    @Test func thousandNodeLinearValidates() throws {
        let yaml = TopologyGenerator.linear(switches: 1000, TopologyGenerator.Options(name: "linear1000", rate: "100mbit"))
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "linear1000.yaml")
        #expect(t.nodes.count == 1000 && t.links.count == 1999)
    }

    @Test func treeAndStar() throws {
        let tree = try TopologyLoader.load(data: Data(TopologyGenerator.tree(depth: 2, fanout: 3, .init(name: "tree")).utf8), file: "t.yaml")
        #expect(tree.bridges.count == 4 && tree.nodes.count == 9)
        let star = try TopologyLoader.load(data: Data(TopologyGenerator.star(hosts: 5, .init(name: "star")).utf8), file: "s.yaml")
        #expect(star.bridges.count == 1 && star.nodes.count == 5 && star.links.count == 5)
    }
}
