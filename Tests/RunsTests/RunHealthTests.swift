import Foundation
import Hosts
@testable import Runs
import Testing

/// A run's health verdict from readings of our own: CPU busy from /proc/stat's differences,
/// saturation as a share of the run, steal, Pathbed's CPU, and each queue's drops.
@Suite struct RunHealthTests {
    /// A reading at `t` after `busy` and `idle` ticks in all, `steal` of them stolen, `own` ticks of Pathbed.
    func reading(_ t: Double, busy: UInt64, idle: UInt64, steal: UInt64 = 0, own: UInt64 = 0, drops: UInt64 = 0, backlog: UInt64 = 0, under: String = "none") -> (t: Double, h: HealthSample) {
        (t, HealthSample(cpu: [busy, 0, 0, idle, 0, 0, 0, steal], cpus: 2, ownTicks: own, ticksPerSecond: 100,
                         qdiscs: [QdiscCounters(namespace: "pb.lab.router", interface: "wlan0", kind: "htb", drops: drops, overlimits: drops * 2, backlogBytes: backlog * 1514, backlogPackets: backlog)], virtualization: under))
    }

    @Test func aHostBusyMostOfTheRunMakesItSuspect() {
        // 10 s, 200 ticks a second over two CPUs: saturated (>= 90 %) in 6 of 10 seconds.
        var r = [reading(-0.5, busy: 0, idle: 0, under: "software emulation")]
        var busy: UInt64 = 0, idle: UInt64 = 0
        for s in 1...10 {
            let b: UInt64 = s <= 6 ? 190 : 40
            busy += b; idle += 200 - b
            r.append(reading(Double(s) - 0.5, busy: busy, idle: idle, own: UInt64(s) * 3, drops: UInt64(s) * 10, backlog: UInt64(s), under: "software emulation"))
        }
        let h = RunHealth.compute(["vm": r], duration: 10)
        #expect(h.verdict == "suspect")
        #expect(h.reasons.first?.contains("vm's CPUs were at least 90 % busy 60 % of the run (under software emulation)") == true, "\(h.reasons)")
        let host = try! #require(h.hosts.first)
        #expect(abs(host.saturated - 60) < 1e-9 && abs(host.cpuBusy - (6 * 190 + 4 * 40) / 2000.0 * 100) < 1e-9)
        #expect(abs(host.pathbedCPU - 3) < 1e-9, "3 ticks a second at 100 a second: 3 % of a CPU")
        #expect(h.queues.first?.drops == 100 && h.queues.first?.backlogMaxPackets == 10 && h.queues.first?.end == "router:wlan0")
    }

    @Test func anIdleHostIsValidAndStealIsSaid() {
        let quiet = RunHealth.compute(["here": [reading(0, busy: 0, idle: 0), reading(5, busy: 100, idle: 900)]], duration: 5)
        #expect(quiet.verdict == "valid" && quiet.reasons.isEmpty && quiet.hosts.first?.cpuBusy == 10)
        let stolen = RunHealth.compute(["here": [reading(0, busy: 0, idle: 0), reading(5, busy: 100, idle: 700, steal: 200)]], duration: 5)
        #expect(stolen.verdict == "suspect" && stolen.reasons.contains { $0.contains("stole 20 %") })
        // Counters that go backwards (a wrapped or reset counter) are never negative time.
        let odd = RunHealth.compute(["here": [reading(0, busy: 500, idle: 500), reading(5, busy: 100, idle: 100)]], duration: 5)
        #expect(odd.hosts.first.map { $0.cpuBusy.isFinite && $0.cpuBusy >= 0 } == true)
        let none = RunHealth.compute([:], duration: 5)
        #expect(none.verdict == "suspect" && none.reasons == ["no health readings: nothing is known of the machines' load"])
    }
}
