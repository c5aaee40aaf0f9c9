import Foundation
import Testing
@testable import TopologyModel

/// Workloads and faults as the validator resolves them: typed kinds, options read once and
/// range-checked, targets found, traces read with their own positions.
@Suite struct RunModelTests {
    @Test func theOriginsWorkloadsAreTypedWithTheirTargets() throws {
        let t = try TopologyLoader.load(path: repoPath("topologies/thesis-two-vms.yaml"))
        guard case let .iperf3(bulk) = try #require(t.workloads.first).kind else { Issue.record("not iperf3"); return }
        #expect(bulk.client == "client" && bulk.server == "proxy" && bulk.reverse && bulk.streams == 1)
        #expect(bulk.target.description == "10.0.3.2", "the proxy's first address")
        #expect(t.workloads[0].mptcp && t.workloads[0].mptcpServer, "the proxy has MPTCP: both sides open MPTCP sockets")
        guard case let .ping(rtt) = t.workloads[1].kind else { Issue.record("not ping"); return }
        #expect(rtt.interval == .ms(200) && rtt.bind == nil)
        guard case let .linkDown(link, reannounce) = try #require(t.schedule.first).kind else { Issue.record("not link-down"); return }
        #expect(t.links[link].name == "lte" && !reannounce && t.schedule[0].duration == .seconds(10))
    }

    @Test func optionsAreTypedAndAServerWithoutMPTCPIsNotWrapped() throws {
        let t = try TopologyLoader.load(data: Data("""
            name: o
            hosts: { here: { underlay: 10.9.0.1, mtu: 5000 }, plain: { ssh: root@p, underlay: 10.9.0.2, mtu: 5000, mptcp: false } }
            nodes: { a: { host: here }, b: { host: here }, s: { host: plain } }
            links:
              - { endpoints: [a:eth0, b:eth0], subnet: 10.0.0.0/24 }
              - { endpoints: [b:eth1, s:eth0], subnet: 10.0.1.0/24 }
            workloads:
              - { name: i, plugin: iperf3, client: a, server: s, mptcp: true, duration: 5s, with: { streams: 4, bind: 10.0.0.1 } }
              - { name: p, plugin: ping, client: a, server: b, duration: 5s, with: { interval: 50ms } }
              - { name: t, plugin: transfer, client: a, server: b, duration: 5s, with: { sizes: [16kB, 1MiB, 2000], repeat: 3 } }
              - { name: c, plugin: command, node: a, duration: 5s, with: { command: "echo hi" } }
            """.utf8), file: "o.yaml")
        guard case let .iperf3(i) = t.workloads[0].kind, case let .ping(p) = t.workloads[1].kind,
              case let .transfer(x) = t.workloads[2].kind, case let .command(c) = t.workloads[3].kind else { Issue.record("kinds"); return }
        #expect(i.streams == 4 && i.bind?.description == "10.0.0.1" && t.workloads[0].mptcp && !t.workloads[0].mptcpServer)
        #expect(p.interval == .ms(50))
        #expect(x.sizes == [16_000, 1_048_576, 2000] && x.repeats == 3)
        #expect(c.argv == ["sh", "-c", "echo hi"])
    }

    @Test func aBrokenTraceIsAnErrorAtItsOwnLineAndColumn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let lab = dir.appendingPathComponent("lab.yaml").path
        try """
            name: tr
            nodes: { a: {}, b: {} }
            links: [ { name: ab, endpoints: [a:eth0, b:eth0], subnet: 10.0.0.0/24 } ]
            run: { duration: 30s }
            schedule: [ { at: 1s, fault: trace, link: ab, for: 5s, with: { file: t.csv } } ]
            """.write(toFile: lab, atomically: true, encoding: .utf8)
        func errors(_ csv: String?) -> [Diagnostic] {
            if let csv { try? csv.write(to: dir.appendingPathComponent("t.csv"), atomically: true, encoding: .utf8) }
            do { _ = try TopologyLoader.load(path: lab); return [] } catch let e as TopologyErrors { return e.diagnostics } catch { return [] }
        }
        #expect(errors("time,rate\n0,5mbit\n2,1mbit\n").isEmpty)
        let order = errors("0,5mbit\n2,1mbit\n1,3mbit\n")
        #expect(order.count == 1 && order[0].location.file.hasSuffix("t.csv") && order[0].location.line == 3 && order[0].message.contains("times must increase"), "\(order)")
        let rate = errors("0,5mbit\n1, fast\n")
        #expect(rate.first?.location.line == 2 && rate.first?.location.column == 3 && rate.first?.message.contains("'fast' is not a rate") == true, "\(rate)")
        let long = errors("0,5mbit\n9,1mbit\n")
        #expect(long.first?.message.contains("longer than the fault") == true, "\(long)")
        #expect(errors("# nothing\n").first?.message.contains("has no rows") == true)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("t.csv"))
        let missing = errors(nil)
        #expect(missing.first?.message.contains("cannot read the trace") == true && missing.first?.location.line == 5, "a missing trace at the topology's line: \(missing)")
    }
}
