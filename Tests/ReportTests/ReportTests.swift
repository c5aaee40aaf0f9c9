import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Report

@Suite struct ReportTests {
    /// 20 Mbit/s, a fault from 10 to 15 s down to 5 Mbit/s, back to 20 from 17.3 s on: 100 ms samples.
    static func faulted(recoverAt: Double = 17.3) -> Series {
        var s = Series(name: "bulk", unit: "Mbit/s", quantity: .throughput)
        for i in 1...300 {
            let t = Double(i) / 10
            s.times.append(t)
            s.values.append(t >= 10 && t < recoverAt ? 5 : 20)
        }
        return s
    }

    @Test func recoveryIsTheTimeFromTheLinksReturnToNinetyFivePercentOfBefore() {
        let i = Recovery.impact(of: Self.faulted(), faultStart: 10, faultEnd: 15, until: 30)
        #expect(i.before == 20 && i.during == 5)
        // The 1 s moving mean reaches 19 Mbit/s (95 % of 20) when 14 of its 10 samples... i.e. 0.9 s after 17.3 s.
        let r = try! #require(i.recoverySeconds)
        #expect(abs(r - (17.3 + 0.9 - 15)) < 0.101, "resolved to 100 ms: \(r)")
    }

    @Test func aThroughputThatNeverComesBackHasNoRecoveryTime() {
        let i = Recovery.impact(of: Self.faulted(recoverAt: 99), faultStart: 10, faultEnd: 15, until: 30)
        #expect(i.recoverySeconds == nil && i.after == 5)
    }

    /// A fault 2 s after another was reverted: its baseline is those 2 s, not the 5 s that hold
    /// the earlier outage (20 Mbit/s before anything, 5 during the first fault, 12 after it).
    @Test func aFaultsBaselineLeavesOutAnEarlierFault() {
        var s = Series(name: "bulk", unit: "Mbit/s", quantity: .throughput)
        for i in 1...300 {
            let t = Double(i) / 10
            s.times.append(t); s.values.append(t < 8 ? 20 : t < 10 ? 5 : 12)
        }
        var r = RunResults(pathbed: "test", lab: "x", file: "x.yaml", started: Date(), durationSeconds: 30, hosts: [:], sampleIntervalSeconds: 0.1, events: [
            .init(label: "first", kind: "link-down", planned: 8, actual: 8, applied: 8, revertPlanned: 10, revertActual: 10),
            .init(label: "second", kind: "link-down", planned: 12, actual: 12, applied: 12, revertPlanned: 14, revertActual: 14),
        ])
        r.workloads = [RunResults.WorkloadResult(name: "bulk", plugin: "iperf3", node: "c", target: "s", mptcp: false, started: 0, exitCode: 0, error: nil, series: [s])]
        r.computeImpacts()
        let second = try! #require(r.impacts.first { $0.event == "second" }?.impact)
        #expect(second.baselineFrom == 10 && abs((second.before ?? 0) - 12) < 0.01, "\(second)")
        let first = try! #require(r.impacts.first { $0.event == "first" }?.impact)
        #expect(first.baselineFrom == 3 && first.before == 20, "\(first)")
    }

    @Test func ratesFromCountersSurviveACounterReset() {
        let s = Series.rate(name: "eth0", times: [0, 0.1, 0.2, 0.3], bytes: [0, 250_000, 500_000, 10])
        #expect(s.values.count == 3)
        #expect(abs(s.values[0] - 20) < 1e-9 && abs(s.values[1] - 20) < 1e-9 && s.values[2] == 0)
    }

    @Test func csvPutsEverySeriesOnOneGrid() {
        let a = Series(name: "a, \"quoted\"", unit: "Mbit/s", quantity: .throughput, times: [0.1, 0.2, 0.4], values: [1, 2, 4])
        let b = Series(name: "b", unit: "ms", quantity: .rtt, times: [0.21], values: [30])
        let lines = Render.csv([a, b], step: 0.1, end: 0.4).components(separatedBy: "\r\n")
        #expect(lines[0] == #"time_s,"a, ""quoted"" (Mbit/s)","b (ms)""#)
        #expect(lines[1] == "0.000,,")
        #expect(lines[2] == "0.100,1.0000,")
        #expect(lines[3] == "0.200,2.0000,30.0000")
        // 0.3 s has no sample: an empty cell, not 2.0 carried over.
        #expect(lines[4] == "0.300,,")
        #expect(lines[5] == "0.400,4.0000,")
    }

    @Test func plotsAreWellFormedSVGWithTheFaultShaded() throws {
        let svg = Render.svg(title: "lab <x> & y", unit: "Mbit/s", series: [Self.faulted()], marks: [Mark(label: "link-down lte", start: 10, end: 15)], end: 30)
        let doc = try XMLDocument(data: Data(svg.utf8))
        #expect(doc.rootElement()?.name == "svg")
        #expect(svg.contains("link-down lte") && svg.contains("<polyline") && svg.contains("lab &lt;x&gt; &amp; y"))
    }

    @Test func summariesOfRepetitions() throws {
        let s = try #require(Summary([26.7, 28.4, 27.5, 28.0]))
        #expect(abs(s.mean - 27.65) < 1e-9 && abs(s.median - 27.75) < 1e-9 && s.count == 4)
        #expect(abs(s.standardDeviation - 0.7326) < 1e-3)
        #expect(Summary([]) == nil)
    }
}
