import Foundation
@testable import Runs
import Testing
import TopologyModel

/// A study's directory is kept for one study: the same variants of the same base lab.
@Suite struct StudyResumeTests {
    @Test func aChangedBaseFileIsRefusedBeforeAResume() throws {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pb-study-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: d) }
        let base = """
            name: stb
            profiles: { p: { rate: 10mbit } }
            nodes: { a: {}, b: {} }
            links: [ { name: l, endpoints: [a:eth0, b:eth0], profile: p, subnet: 10.0.0.0/30 } ]
            workloads: [ { name: w, plugin: ping, client: a, server: b, duration: 2s } ]
            """
        try base.write(toFile: "\(d)/base.yaml", atomically: true, encoding: .utf8)
        try "study: stb\nbase: base.yaml\nrepeat: 2\nvary: [ { path: run.seed, values: [1, 2] } ]\n".write(toFile: "\(d)/s.yaml", atomically: true, encoding: .utf8)
        let first = StudyRunner(study: try StudyFile.load(path: "\(d)/s.yaml"), directory: "\(d)/out")
        #expect(try first.prepare().count == 2)
        // The same study again: resumed.
        #expect(try StudyRunner(study: try StudyFile.load(path: "\(d)/s.yaml"), directory: "\(d)/out").prepare().count == 2)
        // The base's rate changed: the runs kept would be of another lab.
        try base.replacingOccurrences(of: "10mbit", with: "2mbit").write(toFile: "\(d)/base.yaml", atomically: true, encoding: .utf8)
        #expect { try StudyRunner(study: try StudyFile.load(path: "\(d)/s.yaml"), directory: "\(d)/out").prepare() } throws: { "\($0)".contains("changed since") }
        // A `set:` added changes the lab too.
        try base.write(toFile: "\(d)/base.yaml", atomically: true, encoding: .utf8)
        try "study: stb\nbase: base.yaml\nrepeat: 2\nset: [ { path: profiles.p.rate, value: 3mbit } ]\nvary: [ { path: run.seed, values: [1, 2] } ]\n".write(toFile: "\(d)/s.yaml", atomically: true, encoding: .utf8)
        #expect { try StudyRunner(study: try StudyFile.load(path: "\(d)/s.yaml"), directory: "\(d)/out").prepare() } throws: { "\($0)".contains("changed since") }
    }
}
