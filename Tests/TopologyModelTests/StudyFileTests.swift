import Foundation
import Testing
@testable import TopologyModel

/// Study files: what varies, crossed; each variant the base with its values put in; every
/// mistake with its line and column.
@Suite struct StudyFileTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let base = root.appendingPathComponent("topologies/two-paths.yaml").path

    @Test func variantsAreCrossedAndPutIntoTheBase() throws {
        let s = try StudyFile.parse("""
            study: s
            base: \(Self.base)
            repeat: 2
            vary:
              - { path: profiles.path.rate, values: [5mbit, 20mbit] }
              - { path: "nodes.client.sysctls[net.ipv4.tcp_ecn]", values: [0, 1] }
              - { path: links.path2.profile, values: [backbone] }
              - { path: schedule.0.for, values: [3s] }
            """, file: "/tmp/s.yaml")
        #expect(s.repeats == 2 && s.factors.map(\.segments) == [["profiles", "path", "rate"], ["nodes", "client", "sysctls", "net.ipv4.tcp_ecn"], ["links", "path2", "profile"], ["schedule", "0", "for"]])
        let v = s.variants
        #expect(v.count == 4 && v[1].label == "rate=5mbit, net.ipv4.tcp_ecn=1, profile=backbone, for=3s", "\(v.map(\.label))")
        let text = try s.topologyText(v[3])
        let t = try TopologyLoader.load(data: Data(text.utf8), file: "/tmp/v4.yaml", pathsRelativeTo: Self.base)
        #expect(t.profiles.first { $0.name == "path" }?.rate?.bitsPerSecond == 20_000_000)
        #expect(t.links.first { $0.name == "path2" }?.forwardProfile == "backbone")
        #expect(t.schedule.first?.duration.seconds == 3)
        #expect(text.contains("net.ipv4.tcp_ecn: 1"), "\(text)")
    }

    @Test(arguments: [
        ("study: s\nbase: BASE\nvary: [{ path: profiles.path.rate, values: [1mbit] }]\nrepeat: 0\n", 4, "`repeat: 0` is not a number of runs"),
        ("study: s\nbase: nowhere.yaml\nvary: [{ path: a, values: [1] }]\n", 2, "does not exist"),
        ("study: s\nbase: BASE\nvary:\n  - { path: a..b, values: [1] }\n", 4, "is not a path"),
        ("study: s\nbase: BASE\nvary:\n  - { path: a, values: [1, 1] }\n", 4, "repeats a value"),
        ("study: s\nbase: BASE\nvary:\n  - { path: a, values: [] }\n", 4, "a list of 1 to 100 values"),
        ("study: s\nbase: BASE\nvary:\n  - { path: a, values: [1], value: 2 }\n", 4, "unknown key `value`"),
        ("study: bad name!\nbase: BASE\nvary: [{ path: a, values: [1] }]\n", 1, "`study: bad name!`"),
        ("base: BASE\nvary: [{ path: a, values: [1] }]\nextra: 1\n", 3, "unknown key `extra`"),
    ])
    func mistakesAreNamedWithTheirLine(text: String, line: Int, message: String) {
        let file = text.replacingOccurrences(of: "BASE", with: Self.base)
        #expect {
            _ = try StudyFile.parse(file, file: "/tmp/s.yaml")
        } throws: { e in
            let d = (e as? TopologyErrors)?.diagnostics ?? []
            return d.contains { $0.location.line == line && $0.message.contains(message) && $0.location.file == "/tmp/s.yaml" }
        }
    }

    /// What an adversary's study files did: an overflowing product, aliases expanded forever, a
    /// mapping value whose label broke out of a comment, quotes lost, a typo adding a profile.
    @Test func hostileStudyFilesAreRefusedOrKeptAsWritten() throws {
        let many = (0..<10).map { "  - { path: p\($0), values: [\((0..<100).map(String.init).joined(separator: ", "))] }" }.joined(separator: "\n")
        #expect { try StudyFile.parse("study: s\nbase: \(Self.base)\nvary:\n\(many)\n", file: "/tmp/s.yaml") } throws: { "\($0)".contains("variants: at most 1000") }
        #expect { try StudyFile.parse("study: s\nbase: \(Self.base)\nvary:\n  - { path: a, values: &x [1, 2] }\n  - { path: b, values: *x }\n", file: "/tmp/s.yaml") } throws: { "\($0)".contains("aliases") }
        let s = try StudyFile.parse("""
            study: s
            base: \(Self.base)
            vary:
              - { path: description, values: ["[a]", "a: b", "1"] }
              - { path: profiles.path, values: [{ rate: 5mbit, delay: 20ms }] }
            """, file: "/tmp/s.yaml")
        #expect(s.variants.map(\.label).allSatisfy { !$0.contains("\n") }, "\(s.variants.map(\.label))")
        let t = try TopologyLoader.load(data: Data(try s.topologyText(s.variants[0]).utf8), file: "/tmp/v.yaml", pathsRelativeTo: s.base)
        #expect(t.description == "[a]")
        let typo = try StudyFile.parse("study: s\nbase: \(Self.base)\nvary:\n  - { path: profiles.pth.rate, values: [5mbit] }\n", file: "/tmp/s.yaml")
        #expect { try typo.topologyText(typo.variants[0]) } throws: { "\($0)".contains("no `pth` here (it has path, backbone)") }
        #expect(StudyFile.segments("nodes.a.]") == nil && StudyFile.segments("nodes[a[b]]") == nil)
    }

    /// `set:` gives every variant the same settings first (here: the origin's recovery study).
    /// A factor's `name:` and a word per value (`labels:`) name the variants; the origin's
    /// second study is one such file.
    @Test func namedFactorsAndLabelsNameTheVariants() throws {
        let s = try StudyFile.load(path: Self.root.appendingPathComponent("topologies/studies/home-mptcp.yaml").path)
        let v = s.variants
        #expect(v.count == 8 && v[0].label == "scenario=LAN eth+wifi, protocol=TCP" && v[7].label == "scenario=WAN wifi+lte, protocol=MPTCP", "\(v.map(\.label))")
        let t = try TopologyLoader.load(data: Data(try s.topologyText(v[5]).utf8), file: "/tmp/v6.yaml", pathsRelativeTo: s.base)
        #expect(t.workloads.count == 1 && t.workloads[0].mptcp && t.workloads[0].location.line > 0)
        guard case let .transfer(x) = t.workloads[0].kind else { Issue.record("not a transfer"); return }
        #expect(x.client == "eth-lte" && x.server == "cloud")
        for (entry, message) in [
            ("{ path: schedule.0.for, values: [2s, 5s], labels: [short] }", "gives one word per value: 2"),
            ("{ path: schedule.0.for, values: [2s, 5s], labels: [a, a] }", "repeats a label"),
            ("{ path: schedule.0.for, values: [2s, 5s], labels: [\"a\\u001b[2J\", b] }", "letters, digits"),
            ("{ path: schedule.0.for, values: [2s, 5s], name: \"x, y=z\" }", "`name:` of schedule.0.for"),
            ("{ path: schedule.0.for, values: [2s, 5s], labels: [[1], b] }", "gives one word per value"),
        ] {
            #expect(throws: TopologyErrors.self) { try StudyFile.parse("study: s\nbase: \(Self.base)\nvary:\n  - \(entry)\n", file: "/tmp/s.yaml") }
            do { _ = try StudyFile.parse("study: s\nbase: \(Self.base)\nvary:\n  - \(entry)\n", file: "/tmp/s.yaml") } catch {
                #expect("\(error)".contains(message), "\(entry): \(error)")
            }
        }
    }

    @Test func fixedSettingsComeFirst() throws {
        let file = Self.root.appendingPathComponent("topologies/studies/origin-recovery.yaml").path
        let s = try StudyFile.load(path: file)
        #expect(s.repeats == 15 && s.fixed.map(\.path) == ["workloads", "schedule.0.at"] && s.variants.count == 4)
        let v = s.variants[3]
        #expect(v.label == "link=wlan, reannounce=true")
        let t = try TopologyLoader.load(data: Data(try s.topologyText(v).utf8), file: "/tmp/v.yaml", pathsRelativeTo: s.base)
        #expect(t.workloads.map(\.name) == ["bulk"] && t.workloads[0].duration.seconds == 35)
        #expect(t.schedule.count == 1 && t.schedule[0].at.seconds == 10)
    }

    @Test func aPathThatDoesNotFitTheBaseSaysWhy() throws {
        let s = try StudyFile.parse("study: s\nbase: \(Self.base)\nvary:\n  - { path: links.nolink.profile, values: [x] }\n  - { path: profiles.path.rate.deeper, values: [1] }\n", file: "/tmp/s.yaml")
        #expect { try s.topologyText(s.variants[0]) } throws: { "\($0)".contains("no item `nolink` in the list (items: path1, path2, backbone)") }
        let t = try StudyFile.parse("study: s\nbase: \(Self.base)\nvary:\n  - { path: profiles.path.rate.deeper, values: [1] }\n", file: "/tmp/s.yaml")
        #expect { try t.topologyText(t.variants[0]) } throws: { "\($0)".contains("`deeper` is under a value") }
        #expect(StudyFile.segments("a.b[c.d].e") == ["a", "b", "c.d", "e"] && StudyFile.segments("a[b") == nil && StudyFile.segments(".a") == nil)
    }
}
