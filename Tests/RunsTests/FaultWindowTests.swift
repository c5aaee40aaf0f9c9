import Foundation
import HostTesting
import Hosts
import NetlinkTypes
import Planning
@testable import Runs
import Testing
import TopologyModel

/// The run's plan, before any kernel is touched: fault windows, random schedules, traces,
/// partitions, the order of the playbook, and hosts that keep the time of a change.
@Suite struct FaultWindowTests {
    func windows(_ t: Topology, seedOffset: Int = 0) -> [FaultWindow] {
        Faults.windows(t, Planner.plan(t), runLength: 200, seedOffset: seedOffset).windows
    }

    @Test func randomSpacingIsReproducibleAndNeverOverlaps() throws {
        let t = try twoPathLab("  - { at: 5s, fault: link-flap, link: p2, for: 2s, every: 10s, count: 12, random: exponential }")
        let a = windows(t).map(\.start), b = windows(t).map(\.start), c = windows(t, seedOffset: 1).map(\.start)
        #expect(a == b, "the same seed gives the same schedule")
        #expect(a != c, "another seed another")
        #expect(a.count == 12 && a[0] == 5)
        let gaps = zip(a.dropFirst(), a).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= 2 }, "a repetition starts after the last ended: \(gaps)")
        #expect(Set(gaps.map { ($0 * 1000).rounded() }).count > 6, "gaps vary: \(gaps)")
        let fixed = windows(try twoPathLab("  - { at: 5s, fault: link-flap, link: p2, for: 2s, every: 10s, count: 3 }")).map(\.start)
        #expect(fixed == [5, 15, 25])
    }

    @Test func theLargestSeedWrapsInsteadOfTrapping() throws {
        let yaml = "  - { at: 5s, fault: link-flap, link: p2, for: 2s, every: 10s, count: 3, random: uniform }"
        let t = try twoPathLab(yaml, extra: "")
        var big = t
        big.run.seed = Int.max
        #expect(windows(big, seedOffset: 5).count == 3, "seed + offset wraps")
    }

    @Test func aTraceBecomesInPlaceChanges() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "time,rate,delay\n0,5mbit\n1.5,1mbit\n3,4mbit\n".write(to: dir.appendingPathComponent("t.csv"), atomically: true, encoding: .utf8)
        let t = try twoPathLab("  - { at: 10s, fault: trace, link: p1, for: 5s, with: { file: t.csv } }", file: dir.appendingPathComponent("lab.yaml").path)
        let w = try #require(windows(t).first)
        #expect(w.changes.map(\.at) == [10, 11.5, 13] && w.end == 15)
        guard case let .profile(_, original, from, to) = w.changes[1].actions[0].action else { Issue.record("not a profile change"); return }
        #expect(original?.rateBitsPerSecond == 10_000_000 && from?.rateBitsPerSecond == 5_000_000 && to?.rateBitsPerSecond == 1_000_000)
        #expect(w.lastActions.count == 2, "one revert per link end")
    }

    @Test func aPartitionCutsBothWaysAheadOfEveryTable() throws {
        let t = try twoPathLab("  - { at: 1s, fault: partition, nodes: [server], for: 1s }")
        let actions = try #require(windows(t).first).changes[0].actions
        func destinations(_ node: String) -> [String] {
            actions.flatMap { a -> [String] in if case let .partition(ns, d) = a.action, ns == "pb.rp.\(node)" { return d.map(\.description) } else { return [] } }.sorted()
        }
        #expect(destinations("server") == ["10.0.1.1/32", "10.0.1.2/32", "10.0.2.1/32", "10.0.2.2/32", "10.0.3.1/32"])
        #expect(destinations("client") == ["10.0.3.2/32"] && destinations("router") == ["10.0.3.2/32"])
        #expect(FaultAction.partitionPriority < 1000, "ahead of the lab's source-routing rules")
    }

    @Test func profileAndLossBurstChangeInPlaceAndSayWhatTheyNeed() throws {
        let t = try twoPathLab("""
              - { at: 1s, fault: profile, link: p1, profile: slow, for: 1s }
              - { at: 3s, fault: loss-burst, link: p2, loss: 20%, for: 1s }
            """)
        let w = windows(t)
        guard case let .profile(_, original, _, to) = w[0].changes[0].actions[0].action else { Issue.record("not a profile change"); return }
        #expect(original?.rateBitsPerSecond == 10_000_000 && to?.rateBitsPerSecond == 2_000_000 && to?.shaping.rootKind == .tbf)
        guard case let .profile(_, _, _, burst) = w[1].changes[0].actions[0].action else { Issue.record("not a profile change"); return }
        #expect(burst?.netem?.loss == 20 && burst?.rateBitsPerSecond == 10_000_000, "the link's rate kept, loss added")
        #expect(w[1].needs["local"]?.contains(.netem) == true && w[0].needs["local"] == [.tbf])
    }

    @Test func reannounceTakesTheEndpointsOfThatInterfaceFromThePlan() throws {
        let t = try twoPathLab("  - { at: 1s, fault: link-down, link: p2, for: 1s, with: { reannounce: true } }")
        let actions = try #require(windows(t).first).changes[0].actions
        let client = actions.compactMap { a -> [ReannouncedEndpoint]? in if case let .linkDown(l, _, e) = a.action, l.namespace == "pb.rp.client" { return e ?? [] } else { return nil } }
        #expect(client.first?.map(\.address.description) == ["10.0.2.2"] && client.first?.first?.flags == [.subflow])
    }

    @Test func thePlaybookRevertsBeforeItInjectsAtTheSameTime() throws {
        let t = try twoPathLab("""
              - { at: 5s, fault: link-down, link: p1, for: 5s }
              - { at: 10s, fault: link-down, link: p1, for: 1s }
            """)
        var p = Playbook(windows(t))
        var order: [String] = []
        while let s = p.next(at: 1000) { order.append("\(s.at) \(s.kind == .revert ? "revert" : "inject") \(s.window)") }
        #expect(order == ["5.0 inject 0", "10.0 revert 0", "10.0 inject 1", "11.0 revert 1"])
    }

    @Test func aChangeSentAheadIsMadeAtItsTime() throws {
        let cut = FaultAction.partition(namespace: "pb.x.a", destinations: [IPNetwork("10.0.0.1/32")!])
        let recorder = RecordingExecutor(host: "h")
        let at = monotonicNanoseconds() + 50_000_000
        let timing = try recorder.change([cut], inject: true, at: at, revertAfter: 3)
        #expect(timing.began >= at && timing.began - at < 5_000_000, "began \(Double(Int64(timing.began) - Int64(at)) / 1e6) ms after its time")
        #expect(recorder.activeFaults.count == 1)
        try recorder.revert(cut)
        #expect(recorder.activeFaults.isEmpty && recorder.faultLog.count == 2)
    }
}
