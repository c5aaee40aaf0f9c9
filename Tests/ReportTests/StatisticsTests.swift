import Foundation
@testable import Report
import Testing

/// Figures across runs, path use, and results written before series said what they measure.
@Suite struct StatisticsTests {
    func result(_ mbps: [Double], recovery: Double) -> RunResults {
        var r = RunResults(pathbed: "test", lab: "x", file: "x.yaml", started: Date(), durationSeconds: 10, hosts: [:], sampleIntervalSeconds: 0.1, events: [])
        r.workloads = [.init(name: "bulk", plugin: "iperf3", node: "c", target: "s", mptcp: true, started: 0, exitCode: 0, error: nil,
                             series: [Series(name: "bulk (iperf3)", unit: "Mbit/s", quantity: .throughput, times: mbps.indices.map(Double.init), values: mbps)])]
        r.impacts = [.init(event: "link-down p2 #2", impact: Impact(series: "bulk (iperf3)", before: 20, during: 10, after: 19, recoverySeconds: recovery))]
        return r
    }

    @Test func statisticsAcrossRunsAndTwoSetsSideBySide() throws {
        let a = [result([10, 20], recovery: 1), result([20, 20], recovery: 3), result([30, 30], recovery: 2)]
        let table = RunStatistics.table(a)
        // Means 15, 20, 30: mean 21.67, sd 7.64, t(0.975, 2) = 4.303: 21.67 ± 18.98.
        let row = table.split(separator: "\n").first { $0.hasPrefix("bulk throughput mean Mbit/s") }?.split(separator: " ").suffix(9)
        #expect(row.map(Array.init) == ["3", "21.67", "2.69", "to", "40.64", "7.64", "20.00", "15.00", "30.00"], "\(table)")
        let recovery = table.split(separator: "\n").first { $0.hasPrefix("link-down p2 / bulk: recovery s") }?.split(separator: " ", omittingEmptySubsequences: true)
        #expect(recovery.map { Array($0.suffix(9)) } == ["3", "2.00", "-0.48", "to", "4.48", "1.00", "2.00", "1.00", "3.00"], "repetition numbers pooled: \(table)")
        let cmp = RunStatistics.comparison(a, [result([40, 40], recovery: 1)], names: ("a", "b"))
        #expect(cmp.contains("+84.6 %") && cmp.contains("not judged (n < 2)"), "\(cmp)")  // 40 against 21.67
    }

    @Test func pathUseIsEachInterfacesShareOfTheBytesWhileTheWorkloadRan() throws {
        var r = RunResults(pathbed: "test", lab: "x", file: "x.yaml", started: Date(), durationSeconds: 10, hosts: [:], sampleIntervalSeconds: 0.1, events: [])
        func sample(_ t: Double, _ a: UInt64, _ b: UInt64) -> RunResults.RawSample {
            RunResults.RawSample(host: "local", t: t, counters: [.init(namespace: "pb.x.c", interface: "eth0", rxBytes: a, txBytes: 0),
                                                                 .init(namespace: "pb.x.c", interface: "eth1", rxBytes: b, txBytes: 0),
                                                                 .init(namespace: "pb.x.s", interface: "eth0", rxBytes: 999, txBytes: 0)])
        }
        r.rawCounters = [sample(0, 0, 0), sample(1, 100, 0), sample(2, 400, 100), sample(3, 700, 200)]
        var w = RunResults.WorkloadResult(name: "w", plugin: "iperf3", node: "c", target: "s", mptcp: true, started: 1, exitCode: 0, error: nil, series: [])
        w.ended = 3
        r.workloads = [w]
        r.computePathUse()
        let use = try #require(r.workloads[0].pathUse)
        #expect(abs((use["eth0"] ?? 0) - 0.75) < 1e-9 && abs((use["eth1"] ?? 0) - 0.25) < 1e-9, "\(use)")
    }

    /// A series says what it measures; one written by an older Pathbed (no `quantity`) is read
    /// as its unit said it then.
    @Test func aSeriesSaysWhatItMeasuresAndOlderResultsStillRead() throws {
        let s = Series(name: "rtt (ping RTT)", unit: "ms", quantity: .rtt, times: [1], values: [20])
        let back = try JSONDecoder().decode(Series.self, from: JSONEncoder().encode(s))
        #expect(back == s)
        for (unit, quantity) in [("Mbit/s", Series.Quantity.throughput), ("ms", .rtt), ("s", .transferTime), ("Mbit/s per transfer", .transferGoodput), ("ops", .pluginMetric)] {
            let old = #"{"name": "x", "unit": "\#(unit)", "times": [], "values": []}"#
            #expect(try JSONDecoder().decode(Series.self, from: Data(old.utf8)).quantity == quantity)
        }
        #expect(RunStatistics.metricName(Series(name: "t (transfer time)", unit: "s", quantity: .transferTime)) == "transfer time")
        #expect(RunStatistics.metricName(Series(name: "rr (latency)", unit: "ms", quantity: .pluginMetric)) == "latency")
    }
}
