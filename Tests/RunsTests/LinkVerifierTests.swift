import Foundation
@testable import Runs
import TopologyModel
import Testing

/// `pathbed verify`'s judgement of delivered against configured, with figures of our own.
@Suite struct LinkVerifierTests {
    func profile(_ yaml: String) throws -> LinkProfile {
        let t = try TopologyLoader.load(data: Data("""
            name: p
            profiles: { x: \(yaml) }
            nodes: { a: {}, b: {} }
            links: [ { endpoints: [a:eth0, b:eth0], profile: x, subnet: 10.0.0.0/24 } ]
            """.utf8), file: "p.yaml")
        return try #require(t.profiles.first)
    }

    @Test func rttIsTheMedianAgainstBothDelaysWithinTwoMillisecondsOrTenPercentPlusJitter() throws {
        let wlan = try profile("{ rate: 20mbit, delay: 10ms }")
        let ok = LinkVerifier.judgeRTT(link: "w", forward: wlan, reverse: wlan, replies: [20.9, 21.3, 21.1, 400, 21.0])
        #expect(ok.configured == 20 && ok.delivered == 21.1 && ok.verdict == "ok", "one late reply does not move the median")
        #expect(LinkVerifier.judgeRTT(link: "w", forward: wlan, reverse: wlan, replies: [22.5, 22.6, 22.4]).verdict == "outside")
        let lte = try profile("{ rate: 10mbit, delay: 50ms, jitter: 5ms }")
        let j = LinkVerifier.judgeRTT(link: "l", forward: lte, reverse: nil, replies: [59.5])
        #expect(j.high == 50 + 5 + 5 && j.verdict == "ok", "10 % of 50 ms and the jitter")
        let none = LinkVerifier.judgeRTT(link: "w", forward: wlan, reverse: wlan, replies: [])
        #expect(none.verdict == "outside" && none.delivered == nil && none.note == "no probe came back")
    }

    @Test func lossIsJudgedByTheIntervalOfTheProbes() throws {
        let lossy = try profile("{ rate: 10mbit, loss: 10% }")
        // 10 % one way: 20 of 200 lost holds it; 0 of 200 does not; 5 of 200 does not.
        #expect(LinkVerifier.judgeLoss(link: "l", forward: lossy, reverse: nil, sent: 200, received: 180).verdict == "ok")
        #expect(LinkVerifier.judgeLoss(link: "l", forward: lossy, reverse: nil, sent: 200, received: 200).verdict == "outside")
        #expect(LinkVerifier.judgeLoss(link: "l", forward: lossy, reverse: nil, sent: 200, received: 195).verdict == "outside")
        // Both ways: 1 - 0.9 * 0.9 = 19 %.
        let both = LinkVerifier.judgeLoss(link: "l", forward: lossy, reverse: lossy, sent: 200, received: 162)
        #expect(abs((both.configured ?? 0) - 19) < 1e-9 && both.verdict == "ok")
        let clean = try profile("{ rate: 10mbit }")
        #expect(LinkVerifier.judgeLoss(link: "c", forward: clean, reverse: clean, sent: 100, received: 100).verdict == "ok")
        #expect(LinkVerifier.judgeLoss(link: "c", forward: clean, reverse: clean, sent: 100, received: 90).verdict == "outside")
        // More received than sent (a duplicate) is never negative loss.
        #expect(LinkVerifier.judgeLoss(link: "c", forward: clean, reverse: clean, sent: 100, received: 101).delivered == 0)
        let (lo, hi) = LinkVerifier.wilson(lost: 0, of: 200)
        #expect(lo == 0 && abs(hi - 1.88) < 0.01)
        let ge = try profile("{ rate: 10mbit, loss: { gilbert-elliott: { p: 1%, r: 10% } } }")
        #expect(LinkVerifier.judgeLoss(link: "g", forward: ge, reverse: nil, sent: 100, received: 90).verdict == "not judged")
    }

    @Test func rateUnderTCPIsAgainstTheProfilesRate() throws {
        let p = try profile("{ rate: 20mbit }")
        let ok = LinkVerifier.judgeRate(link: "w", direction: "forward", profile: p, mbps: 19.9, note: nil)
        #expect(ok.configured == 20 && ok.low == 18 && abs((ok.high ?? 0) - 20.6) < 1e-9 && ok.verdict == "ok")
        #expect(LinkVerifier.judgeRate(link: "w", direction: "forward", profile: p, mbps: 19.1, note: nil).verdict == "ok", "a GSO packet counted as one frame")
        #expect(LinkVerifier.judgeRate(link: "w", direction: "forward", profile: p, mbps: 12.0, note: nil).verdict == "outside")
        #expect(LinkVerifier.judgeRate(link: "w", direction: "forward", profile: p, mbps: 25.0, note: nil).verdict == "outside", "more than the rate: not shaped")
        #expect(LinkVerifier.judgeRate(link: "w", direction: "forward", profile: p, mbps: nil, note: "iperf3 failed").verdict == "outside")
        #expect(LinkVerifier.judgeRate(link: "w", direction: "forward", profile: nil, mbps: 900, note: nil).verdict == "not judged")
        let lossy = try profile("{ rate: 20mbit, loss: 1% }")
        #expect(LinkVerifier.judgeRate(link: "w", direction: "forward", profile: lossy, mbps: 8, note: nil).verdict == "not judged")
        #expect(LinkVerifier.judgeRate(link: "w", direction: "forward", profile: lossy, mbps: 30, note: nil).verdict == "outside")
    }

    /// The rate of a transfer found in counter readings every 200 ms, whenever it started: from
    /// a second after the counters first grew to the last reading that grew.
    @Test func theSteadyRateIsFoundInTheReadingsWhereverTheTransferIs() {
        // Idle for 1.4 s (a late start), then 2.5 MB/s (20 Mbit/s) for 3 s, the last 200 ms of
        // it half as fast (the transfer ended inside it), then idle.
        var r: [(t: UInt64, bytes: UInt64)] = [], bytes: UInt64 = 1000
        for i in 0..<30 {
            let t = Double(i) * 0.2
            if t > 1.4 && t <= 4.2 { bytes += 500_000 } else if t > 4.2 && t <= 4.4 { bytes += 250_000 }
            r.append((UInt64(t * 1e9), bytes))
        }
        let rate = LinkVerifier.steadyRate(r, after: 1.0)
        #expect(rate.map { abs($0 - 20) < 0.01 } == true, "\(String(describing: rate))")
        #expect(LinkVerifier.steadyRate(Array(r.prefix(8)), after: 1.0) == nil, "too short a transfer: no rate")
        #expect(LinkVerifier.steadyRate([(0, 5), (200_000_000, 5)], after: 1.0) == nil, "nothing flowed")
        #expect(LinkVerifier.steadyRate([], after: 1.0) == nil)
    }
}
