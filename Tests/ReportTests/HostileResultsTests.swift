import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Report

/// What an adversary's results files did to `pathbed report` (a trial of this release): each
/// class of it, closed.
@Suite struct HostileResultsTests {
    static func tempDir() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pb-hostile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// A symlink where a report writes (an unpacked archive of a run) is replaced, never followed.
    @Test func writingNeverFollowsASymlink() throws {
        let d = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let victim = "\(d)/victim"
        try "precious".write(toFile: victim, atomically: true, encoding: .utf8)
        for f in ["aggregates.json", "aggregates.csv", "summary.txt", "tidy.csv", "comparison.json", "results.json"] {
            try FileManager.default.createSymbolicLink(atPath: "\(d)/\(f)", withDestinationPath: victim)
        }
        let r = PublishingTests.run(throughput: [1, 2, 3], recoveries: [1])
        try RunStatistics.writeRepetitions([r, r], to: d)
        try RunStatistics.writeComparison([("a", [r, r]), ("b", [r, r])], to: d)
        try RunReport.write(r, to: d)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
    }

    /// Figures no run has: times of 1e300, values whose squares overflow or vanish, sets with no
    /// spread. Nothing traps; what cannot be computed is absent, and every file is written.
    @Test func figuresOutOfRangeNeitherTrapNorStopTheFiles() throws {
        var r = PublishingTests.run(throughput: [1, 2, 3], recoveries: [1])
        r.mptcpEvents = [.init(t: 1e300, node: "c", type: "SF_ESTABLISHED", detail: ""), .init(t: 1e10, node: "c", type: "SF_CLOSED", detail: "")]
        r.durationSeconds = 0
        #expect(r.dropNonFinite() == 1)
        _ = Render.svg(title: "t", unit: "u", series: [], marks: [Mark(label: "x", start: 1e300, kind: "opened"), Mark(label: "y", start: -.infinity, kind: "closed")], end: 0)
        #expect(Inference.welch([1e-100, 2e-100], [3e-100, 5e-100]) == nil || Inference.welch([1e-100, 2e-100], [3e-100, 5e-100])!.p.isFinite)
        #expect(Inference.meanInterval([1e306, -1e306, 1e306]) == nil)
        #expect(Inference.studentQuantile(0.975, df: .nan).isNaN)
        let d = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        // No spread, different means: an exact difference, with no t; JSON written.
        var a = PublishingTests.run(throughput: [5, 5], recoveries: []), b = PublishingTests.run(throughput: [7, 7], recoveries: [])
        a.workloads[0].metrics = ["huge": 1e15]; b.workloads[0].metrics = ["huge": -1e15]
        try RunStatistics.writeComparison([("a", [a, a]), ("b", [b, b])], to: d)
        let c = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(d)/comparison.json"))) as? [String: Any]
        let rows = (c?["against"] as? [String: Any])?["b"] as? [[String: Any]] ?? []
        #expect(rows.contains { $0["verdict"] as? String == "differs (no spread)" }, "\(rows)")
        // A run said to last ten billion seconds gives a plot of bounded size, at once.
        var long = PublishingTests.run(throughput: [1, 2], recoveries: [])
        long.durationSeconds = 1e10
        let svg = try #require(RunStatistics.acrossRunsPlot([("x", [long, long])], title: "t"))
        #expect(svg.utf8.count < 5_000_000)
    }

    /// A connection whose arrays disagree, or that says it had 300 subflows, is refused when
    /// read; one whose sequence numbers wrap or go back adds nothing, and its plot draws.
    @Test func connectionsOutOfRangeAreRefusedOrAddNothing() throws {
        var r = PublishingTests.run(throughput: [1, 2, 3], recoveries: [])
        var c = RunResults.Connection(workload: "w", node: "c", side: "client", token: "1", local: "10.0.0.1:1", remote: "10.0.0.2:2", byteCounters: false)
        c.times = [0, 1, 2]; c.dataAcked = [UInt64.max - 10, 5, 3]; c.dataReceived = [0, 0, 0]; c.subflows = [1, 2, 2]
        r.connections = [c]
        #expect(r.problemForReading() == nil)
        #expect(c.sent == 14, "a wrapped sequence number counts the bytes across the wrap: \(c.sent)")
        #expect(c.throughput.values.allSatisfy { $0.isFinite && $0 >= 0 })
        // 64-bit data sequence numbers survive results.json exactly.
        let back = try JSONDecoder().decode(RunResults.Connection.self, from: JSONEncoder().encode(c))
        #expect(back.dataAcked == c.dataAcked)
        var bad = c; bad.subflows = [1, 300, 2]
        r.connections = [bad]
        #expect(r.problemForReading()?.contains("out of range") == true)
        bad = c; bad.times = [0, 1]
        r.connections = [bad]
        #expect(r.problemForReading()?.contains("different lengths") == true)
    }

    /// A results.json that is a /proc file (size 0, then endless) is refused, not read to the end.
    @Test func aFileThatGoesOnPastItsSizeIsRefused() throws {
        let d = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try FileManager.default.createSymbolicLink(atPath: "\(d)/results.json", withDestinationPath: "/proc/self/pagemap")
        #expect { try RunReport.read(d) } throws: { "\($0)".contains("goes on past its size") || "\($0)".contains("not a results file") }
    }

    /// Names from outside: characters XML forbids make no unreadable SVG; text a spreadsheet
    /// would run as a formula is kept as text.
    @Test func namesFromOutsideStayData() throws {
        let s = Series(name: "lat\u{FFFE}\u{FFFF}\u{1}\u{D7FF}", unit: "ms", quantity: .pluginMetric, times: [0.1], values: [1])
        let svg = Render.svg(title: "\u{FFFF}", unit: "\u{FFFE}", series: [s], marks: [], end: 1)
        #expect(throws: Never.self) { try XMLDocument(data: Data(svg.utf8)) }
        #expect(Render.csvField("=1+1") == "\"'=1+1\"" && Render.csvField("@SUM(A1)") == "\"'@SUM(A1)\"" && Render.csvField("-cmd") == "\"'-cmd\"")
        #expect(Render.csvField("-5") == "\"-5\"" && Render.csvField("bulk") == "\"bulk\"")
    }
}
