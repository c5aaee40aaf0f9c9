import Foundation
import Testing
@testable import TopologyModel

/// Every broken file in Corpus/ must be refused with the message (and position) in its .expect file.
@Suite struct CorpusTests {
    static let cases = files(in: "Tests/TopologyModelTests/Corpus", ending: ".yaml")

    @Test func corpusIsThere() { #expect(Self.cases.count >= 35) }

    @Test(arguments: cases)
    func brokenFileIsRefusedPrecisely(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let expectations = try String(contentsOfFile: path.replacingOccurrences(of: ".yaml", with: ".expect"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(!expectations.isEmpty)
        do {
            _ = try TopologyLoader.load(data: data, file: path)
            Issue.record("\(path) was accepted")
        } catch let errors as TopologyErrors {
            for expectation in expectations {
                var text = expectation
                var position: (Int, Int)?
                if let m = expectation.firstMatch(of: /^(\d+):(\d+) (.*)$/) {
                    position = (Int(m.1)!, Int(m.2)!)
                    text = String(m.3)
                }
                let hit = errors.diagnostics.contains { d in
                    (d.message + " " + (d.hint ?? "")).contains(text) && position.map { d.location.line == $0.0 && d.location.column == $0.1 } ?? true
                }
                #expect(hit, "\(path): no diagnostic \(expectation); got:\n\(errors.description)")
                #expect(errors.diagnostics.allSatisfy { $0.location.file == path })
            }
        }
    }
}

@Suite struct ExampleTopologyTests {
    static let examples = files(in: "topologies", ending: ".yaml")

    @Test func originTestbedsAreThere() {
        let names = Self.examples.map { URL(fileURLWithPath: $0).lastPathComponent }
        #expect(names.contains("thesis-two-vms.yaml"))
        #expect(names.contains("thesis-one-machine.yaml"))
        #expect(names.contains("two-paths.yaml"))
    }

    @Test(arguments: examples)
    func exampleValidates(path: String) throws {
        let t = try TopologyLoader.load(path: path)
        #expect(!t.nodes.isEmpty)
    }

    @Test func twoVMTestbedIsResolved() throws {
        let t = try TopologyLoader.load(path: repoPath("topologies/thesis-two-vms.yaml"))
        #expect(t.hosts.map(\.name) == ["mptcp-vm", "plain-vm"])
        #expect(t.host(named: "plain-vm")?.mptcp == false)
        let crossing = t.links.filter(\.crossesHosts)
        #expect(crossing.count == 1)
        #expect(crossing.first?.endpoints.first?.description == "server:eth0")
        #expect(crossing.first?.tunnelKey != nil)
        // Addresses drawn from the bridge's subnet in link order.
        let addrs = t.links.flatMap(\.endpoints).compactMap { e in e.address.map { "\(e)=\($0)" } }
        #expect(addrs.contains("router:lan0=10.0.3.1/24"))
        #expect(addrs.contains("server:eth0=10.0.3.3/24"))
        // The client is multi-homed with MPTCP, so it gets source routing by default.
        #expect(t.node(named: "client")?.sourceRouting == true)
        #expect(t.node(named: "router")?.sourceRouting == false)
        #expect(t.node(named: "client")?.mptcp?.endpoints.map { $0.address?.description } == ["10.0.1.2", "10.0.2.2"])
        // Loss applies to what the client sends: the reverse direction of the LTE link.
        let lte = try #require(t.links.first { $0.name == "lte" })
        #expect(t.profile(named: lte.reverseProfile!)?.loss != nil)
        #expect(t.profile(named: lte.forwardProfile!)?.loss == nil)
    }

    @Test func validatingTwiceGivesTheSameLab() throws {
        let a = try TopologyLoader.load(path: repoPath("topologies/thesis-two-vms.yaml"))
        let b = try TopologyLoader.load(path: repoPath("topologies/thesis-two-vms.yaml"))
        #expect(a.links == b.links && a.nodes == b.nodes)
    }
}

/// `queue:` as people write it: any case, and `N packets` as plans and results print it.
@Suite struct QueueSpellingTests {
    @Test(arguments: [("BDP", "bdp"), ("Netem", "netem"), ("1000 packets", "1000 packets"), ("1000packets", "1000 packets"),
                      ("1 packet", "1 packet"), ("100MS", "100ms"), ("0.1s", "100ms"), ("'250'", "250 packets")])
    func spelled(text: String, rule: String) throws {
        let yaml = "name: t\nprofiles: { p: { rate: 10mbit, queue: \(text) } }\nnodes: { a: {}, b: {} }\n"
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "q.yaml")
        #expect(t.profile(named: "p")?.queue?.description == rule)
    }
}

/// Every file in Lint/ is valid but wired so that it cannot do what it says: each must get the
/// warnings (with positions) of its .expect file, and no example lab gets any.
@Suite struct LintCorpusTests {
    static let cases = files(in: "Tests/TopologyModelTests/Lint", ending: ".yaml")

    @Test func corpusIsThere() { #expect(Self.cases.count >= 3) }

    @Test(arguments: cases)
    func misWiredLabIsWarnedAboutPrecisely(path: String) throws {
        let t = try TopologyLoader.load(path: path)
        let warnings = TopologyLint.warnings(t)
        let expectations = try String(contentsOfFile: path.replacingOccurrences(of: ".yaml", with: ".expect"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(!expectations.isEmpty)
        for expectation in expectations {
            let m = try #require(expectation.firstMatch(of: /^(\d+):(\d+) (.*)$/))
            let hit = warnings.contains { d in
                (d.message + " " + (d.hint ?? "")).contains(String(m.3)) && d.location.line == Int(m.1)! && d.location.column == Int(m.2)!
            }
            #expect(hit, "\(path): no warning \(expectation); got:\n\(warnings.map(\.description).joined(separator: "\n"))")
        }
        #expect(warnings.allSatisfy { $0.severity == .warning && $0.location.file == path })
    }

    @Test(arguments: ExampleTopologyTests.examples)
    func exampleLabsHaveNoWarnings(path: String) throws {
        let warnings = TopologyLint.warnings(try TopologyLoader.load(path: path))
        #expect(warnings.isEmpty, "\(warnings.map(\.description).joined(separator: "\n"))")
    }
}
