import Foundation
@testable import Report
import Testing

/// A results file comes from outside: every figure in it is checked before any arithmetic, and
/// what cannot be read says which file and why. What a run writes can always be written.
@Suite struct ResultsFileTests {
    func write(_ r: RunResults) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pb-res-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try RunReport.write(r, to: dir)
        return dir
    }

    func results(interval: Double = 0.1) -> RunResults {
        var r = RunResults(pathbed: "test", lab: "x", file: "x.yaml", started: Date(), durationSeconds: 10, hosts: [:], sampleIntervalSeconds: interval, events: [])
        r.workloads = [.init(name: "w", plugin: "iperf3", node: "c", target: "s", mptcp: false, started: 0, exitCode: 0, error: nil,
                             series: [Series(name: "w (iperf3)", unit: "Mbit/s", quantity: .throughput, times: [0.1, 0.2, 0.3], values: [10, .infinity, 12])],
                             metrics: ["mean": .nan, "ok": 3])]
        return r
    }

    @Test func valuesThatAreNotNumbersAreLeftOutAndSaid() throws {
        let dir = try write(results())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let back = try RunReport.read(dir)
        #expect(back.workloads[0].series[0].values == [10, 12] && back.workloads[0].metrics == ["ok": 3])
        #expect(back.problems?.contains { $0.contains("2 values out of range") } == true)
    }

    /// Huge values edited into a results file (1e19 traps a conversion to Int in a plot's axis
    /// labels; 1e308 overflows a mean): left out when read, said, and the rest renders.
    @Test func hugeValuesInAResultsFileAreLeftOutAndTheReportRenders() throws {
        var r = results()
        r.workloads[0].series[0].values = [10, 11, 12]
        let dir = try write(r)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/results.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for huge in ["1e19", "1e308", "-1e308"] {
            let edited = text.replacing(/"values" : \[\s*10,/, with: "\"values\" : [\(huge),", maxReplacements: 1)
            try #require(edited != text)
            try edited.write(toFile: path, atomically: true, encoding: .utf8)
            let back = try RunReport.read(dir)
            #expect(back.workloads[0].series[0].values == [11, 12], "\(huge): \(back.workloads[0].series[0].values)")
            #expect(back.problems?.contains { $0.contains("out of range") && $0.contains(path) } == true)
            try RunReport.render(back, to: dir)
        }
    }

    /// A run's summary states every shaped direction's queue, alike ones on one row; figures out
    /// of range in a results file are shown as unknown.
    @Test func theSummaryStatesTheQueues() throws {
        var r = results()
        r.queues = (0..<5).map { RunResults.Queue(link: "l\($0)", end: "a:eth\($0)", host: "here", profile: "wlan", rule: "bdp", packets: 61, forDelay: 17, milliseconds: 26.6) }
            + [RunResults.Queue(link: "x", end: "b:eth0", host: "here", profile: "odd", rule: "100ms", packets: 10, forDelay: 99, milliseconds: .infinity)]
            + [RunResults.Queue(link: "l0", end: "a:eth0", host: "here", profile: "slow", rule: "bdp", packets: 49, forDelay: 5, milliseconds: 532.9, during: "fault 1\n(profile)")]
        let text = RunReport.summary(r)
        let slow = try #require(text.split(separator: "\n").first { $0.contains("slow") })
        #expect(slow.contains("fault 1?(profile)") && slow.contains("532.9"), "\(text)")
        #expect(text.contains("wlan"), "\(text)")
        let wlan = try #require(text.split(separator: "\n").first { $0.contains("wlan") })
        #expect(wlan.contains("61") && wlan.contains("17") && wlan.contains("26.6") && wlan.contains("(5 in all)"))
        let odd = try #require(text.split(separator: "\n").first { $0.contains("odd") })
        #expect(!odd.contains("inf") && !odd.contains("99"))
    }

    /// The summary states each node's effective congestion control, scheduler and path manager,
    /// and whether the file set each or the host's default stayed.
    @Test func theSummaryStatesEachNodesSettingsAndWhereTheyCameFrom() throws {
        var r = results()
        r.settings = [RunResults.NodeSettings(node: "client", host: "mptcp-vm", congestionControl: "cubic", scheduler: "default", pathManager: "kernel",
                                              congestionControlFrom: "file", schedulerFrom: "host", pathManagerFrom: "host"),
                      RunResults.NodeSettings(node: "ro\nuter", host: "here", congestionControl: "bbr", scheduler: nil, pathManager: nil,
                                              congestionControlFrom: "host", schedulerFrom: "host", pathManagerFrom: "host")]
        r.warnings = ["lab.yaml:8:51: subflows from sat0 can reach only 10.0.3.0/24\u{1b}[2J"]
        let dir = try write(r)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = RunReport.summary(try RunReport.read(dir))
        let client = try #require(text.split(separator: "\n").first { $0.hasPrefix("client") && $0.contains("mptcp-vm") }, "\(text)")
        #expect(client.contains("cubic (file)") && client.contains("default (host's default)") && client.contains("kernel (host's default)"))
        let router = try #require(text.split(separator: "\n").first { $0.hasPrefix("ro?uter") }, "\(text)")
        #expect(router.contains("bbr (host's default)") && router.contains(" - "))
        #expect(text.contains("WARNINGS") && text.contains("  - lab.yaml:8:51: subflows from sat0 can reach only 10.0.3.0/24?[2J"), "\(text)")
    }

    /// Queue figures from a results file are range-checked before anything is computed with them
    /// (a negative limit trapped the summary's table).
    @Test func queuesOutOfRangeInAResultsFileAreRefused() throws {
        for (packets, held, ms) in [(-5, 0, 1.0), (Int.min, 1, 1.0), (10, 11, 1.0), (10, 1, -1.0), (10, 1, 1e300), (Int.max, 0, 1.0)] as [(Int, Int, Double)] {
            var r = results()
            r.queues = [RunResults.Queue(link: "l", end: "a:eth0", host: "here", profile: "p", rule: "bdp", packets: packets, forDelay: held, milliseconds: ms)]
            let dir = try write(r)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            #expect(throws: (any Error).self, "\(packets) \(held) \(ms)") { _ = try RunReport.read(dir) }
        }
    }

    @Test func aResultsFileWithFiguresNoReportCanBeMadeOfIsRefusedByName() throws {
        let dir = try write(results())
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/results.json"
        let good = try String(contentsOfFile: path, encoding: .utf8)
        for (bad, why) in [(good.replacingOccurrences(of: "\"sampleIntervalSeconds\" : 0.1", with: "\"sampleIntervalSeconds\" : 0"), "sampleIntervalSeconds 0.0"),
                           (good.replacingOccurrences(of: "\"sampleIntervalSeconds\" : 0.1", with: "\"sampleIntervalSeconds\" : 1e-9"), "is not from 0.001"),
                           (good.replacingOccurrences(of: "\"durationSeconds\" : 10", with: "\"durationSeconds\" : 1e300"), "durationSeconds"),
                           (good.replacingOccurrences(of: "0.29999999999999999", with: "0.3, 0.4").replacingOccurrences(of: "0.3\n", with: "0.3, 0.4\n"), "2 values"),
                           ("{", "not a results file"), ("{\"format\": 1}", "not a results file")] {
            try bad.write(toFile: path, atomically: true, encoding: .utf8)
            #expect { try RunReport.read(dir) } throws: { e in "\(e)".contains(path) && "\(e)".contains(why) || "\(e)".contains(path) && why == "2 values" }
        }
        unlink(path)
        mkfifo(path, 0o600)
        #expect { try RunReport.read(dir) } throws: { "\($0)".contains("not a regular file") }
    }

    /// A plugin's metric of another unit than Mbit/s is in series.csv and on a plot of its own;
    /// text from outside (an escape sequence in a name) reaches neither terminal nor file raw.
    @Test func pluginMetricsAreInTheCSVAndPlottedAndNamesAreMadeSafe() throws {
        var r = results()
        r.workloads[0].series = [Series(name: "w (lat)", unit: "ms", quantity: .pluginMetric, times: [0.1, 0.2], values: [3, 4])]
        r.workloads[0].name = "w\u{1b}]0;pwn\u{07}\u{202e}"
        let dir = try write(r)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let csv = try String(contentsOfFile: dir + "/series.csv", encoding: .utf8)
        #expect(csv.hasPrefix(#"time_s,"w (lat) (ms)""#), "\(csv.prefix(80))")
        #expect(FileManager.default.fileExists(atPath: dir + "/plugin-ms.svg"))
        let summary = try String(contentsOfFile: dir + "/summary.txt", encoding: .utf8)
        #expect(!summary.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 || $0.value == 0x202e }, "\(summary)")
        #expect(safeText("a\u{1b}[2Jb\nc") == "a?[2Jb\nc" && safeText("a\nb", singleLine: true) == "a?b")
    }

    @Test func theCSVGridIsBounded() {
        let s = Series(name: "a", unit: "Mbit/s", quantity: .throughput, times: [0, 1e6], values: [1, 2])
        let csv = Render.csv([s], step: 0.001, end: 1e6)
        #expect(csv.split(separator: "\n").count <= Render.maximumRows + 1)
    }

    @Test func aComparisonOfTwoLabsSaysSo() {
        var a = results(interval: 0.1), b = results(interval: 0.1)
        b.lab = "y"
        let text = RunStatistics.comparison([a], [b], names: ("A", "B"))
        #expect(text.contains("different labs (x against y)"), "\(text)")
        a.file = "z.yaml"
        #expect(!RunStatistics.comparison([a], [results()], names: ("A", "B")).contains("different labs"))
    }
}
