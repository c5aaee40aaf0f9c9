import Foundation
@testable import Report
import Testing
@testable import Engine
import TopologyModel

/// The run's plan, before any kernel is touched: fault windows, random schedules, traces,
/// partitions, the order of the playbook, statistics across runs, the wire form of faults.
@Suite struct RunPlanTests {
    func lab(_ schedule: String, extra: String = "", file: String? = nil) throws -> Topology {
        let text = """
            name: rp
            profiles: { path: { rate: 10mbit }, slow: { rate: 2mbit } }
            nodes:
              client: { mptcp: { endpoints: { eth1: subflow, eth2: subflow } } }
              router: { forwarding: true }
              server: {}
            links:
              - { name: p1, endpoints: [router:eth1, client:eth1], profile: path, subnet: 10.0.1.0/24 }
              - { name: p2, endpoints: [router:eth2, client:eth2], profile: path, subnet: 10.0.2.0/24 }
              - { name: bb, endpoints: [router:eth3, server:eth0], subnet: 10.0.3.0/24 }
            \(extra)
            run: { duration: 200s, seed: 42 }
            schedule:
            \(schedule)
            """
        let path = file ?? FileManager.default.temporaryDirectory.appendingPathComponent("rp-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { if file == nil { unlink(path) } }
        return try TopologyLoader.load(path: path)
    }

    func windows(_ t: Topology, seedOffset: Int = 0) throws -> [FaultWindow] {
        try Faults.windows(t, Planner.plan(t), runLength: 200, seedOffset: seedOffset).windows
    }

    @Test func randomSpacingIsReproducibleAndNeverOverlaps() throws {
        let t = try lab("  - { at: 5s, fault: link-flap, link: p2, for: 2s, every: 10s, count: 12, random: exponential }")
        let a = try windows(t).map(\.start), b = try windows(t).map(\.start), c = try windows(t, seedOffset: 1).map(\.start)
        #expect(a == b, "the same seed gives the same schedule")
        #expect(a != c, "another seed another")
        #expect(a.count == 12 && a[0] == 5)
        let gaps = zip(a.dropFirst(), a).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= 2 }, "a repetition starts after the last ended: \(gaps)")
        #expect(Set(gaps.map { ($0 * 1000).rounded() }).count > 6, "gaps vary: \(gaps)")
        let fixed = try windows(try lab("  - { at: 5s, fault: link-flap, link: p2, for: 2s, every: 10s, count: 3 }")).map(\.start)
        #expect(fixed == [5, 15, 25])
    }

    @Test func aTraceBecomesInPlaceChangesAndItsErrorsNameTheLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "time,rate,delay\n0,5mbit\n1.5,1mbit\n3,4mbit\n".write(to: dir.appendingPathComponent("t.csv"), atomically: true, encoding: .utf8)
        let t = try lab("  - { at: 10s, fault: trace, link: p1, for: 5s, with: { file: t.csv } }", file: dir.appendingPathComponent("lab.yaml").path)
        let w = try #require(try windows(t).first)
        #expect(w.changes.map(\.at) == [10, 11.5, 13] && w.end == 15)
        guard case let .profile(_, original, from, to) = w.changes[1].actions[0].action else { Issue.record("not a profile change"); return }
        #expect(original?.rateBitsPerSecond == 10_000_000 && from?.rateBitsPerSecond == 5_000_000 && to?.rateBitsPerSecond == 1_000_000)
        #expect(w.lastActions.count == 2, "one revert per link end")

        try "0,5mbit\n2,1mbit\n1,3mbit\n".write(to: dir.appendingPathComponent("t.csv"), atomically: true, encoding: .utf8)
        #expect(throws: LabError.self) { try windows(t) }
        do { _ = try windows(t) } catch let e as LabError { #expect(e.message.contains("t.csv:3:") && e.message.contains("times must increase"), "\(e.message)") }
        try "0,fast\n".write(to: dir.appendingPathComponent("t.csv"), atomically: true, encoding: .utf8)
        do { _ = try windows(t); Issue.record("accepted") } catch let e as LabError { #expect(e.message.contains("t.csv:1:") && e.message.contains("'fast' is not a rate")) }
    }

    @Test func aPartitionCutsBothWaysAheadOfEveryTable() throws {
        let t = try lab("  - { at: 1s, fault: partition, nodes: [server], for: 1s }")
        let actions = try #require(try windows(t).first).changes[0].actions
        func destinations(_ node: String) -> [String] {
            for a in actions { if case let .partition(ns, d) = a.action, ns == "pb.rp.\(node)" { return d.map(\.description).sorted() } }
            return []
        }
        #expect(destinations("server") == ["10.0.1.1/32", "10.0.1.2/32", "10.0.2.1/32", "10.0.2.2/32", "10.0.3.1/32"])
        #expect(destinations("client") == ["10.0.3.2/32"] && destinations("router") == ["10.0.3.2/32"])
        #expect(FaultAction.partitionPriority < 1000, "ahead of the lab's source-routing rules")
    }

    @Test func profileAndLossBurstChangeInPlaceAndSayWhatTheyNeed() throws {
        let t = try lab("""
              - { at: 1s, fault: profile, link: p1, profile: slow, for: 1s }
              - { at: 3s, fault: loss-burst, link: p2, loss: 20%, for: 1s }
            """)
        let w = try windows(t)
        guard case let .profile(_, original, _, to) = w[0].changes[0].actions[0].action else { Issue.record("not a profile change"); return }
        #expect(original?.rateBitsPerSecond == 10_000_000 && to?.rateBitsPerSecond == 2_000_000 && to?.rootKind == "tbf")
        guard case let .profile(_, _, _, burst) = w[1].changes[0].actions[0].action else { Issue.record("not a profile change"); return }
        #expect(burst?.netem?.loss == 20 && burst?.rateBitsPerSecond == 10_000_000, "the link's rate kept, loss added")
        #expect(w[1].needs["local"]?.contains("netem") == true && w[0].needs["local"] == ["tbf"])
    }

    @Test func reannounceTakesTheEndpointsOfThatInterfaceFromThePlan() throws {
        let t = try lab("  - { at: 1s, fault: link-down, link: p2, for: 1s, with: { reannounce: true } }")
        let actions = try #require(try windows(t).first).changes[0].actions
        let client = actions.compactMap { a -> [ReannouncedEndpoint]? in if case let .linkDown(l, _, e) = a.action, l.namespace == "pb.rp.client" { return e ?? [] } else { return nil } }
        #expect(client.first?.map(\.address.description) == ["10.0.2.2"] && client.first?.first?.flags == [.subflow])
        let bad = try lab("  - { at: 1s, fault: link-down, link: p2, for: 1s, with: { reanounce: true } }")
        #expect(throws: LabError.self) { try windows(bad) }
    }

    @Test func thePlaybookRevertsBeforeItInjectsAtTheSameTime() throws {
        let t = try lab("""
              - { at: 5s, fault: link-down, link: p1, for: 5s }
              - { at: 10s, fault: link-down, link: p1, for: 1s }
            """)
        var p = Playbook(try windows(t))
        var order: [String] = []
        while let s = p.next(at: 1000) { order.append("\(s.at) \(s.kind == .revert ? "revert" : "inject") \(s.window)") }
        #expect(order == ["5.0 inject 0", "10.0 revert 0", "10.0 inject 1", "11.0 revert 1"])
    }

    @Test func faultsCrossTheWireAsTheyAreAndHostsKeepTheTime() throws {
        var q = AgentRequest(id: 7, method: .inject)
        let cut = FaultAction.partition(namespace: "pb.x.a", destinations: [IPNetwork("10.0.0.1/32")!])
        q.actions = [cut]
        q.revertAfter = 3
        q.at = 123_456_789
        let back = try JSONDecoder().decode(AgentRequest.self, from: JSONEncoder().encode(q))
        #expect(back.actions == [cut] && back.method == .inject && back.revertAfter == 3 && back.at == 123_456_789)
        // A change sent ahead is made at its time, not when it arrives.
        let recorder = RecordingExecutor(host: "h")
        let at = monotonicNanoseconds() + 50_000_000
        let timing = try recorder.change([cut], inject: true, at: at, revertAfter: 3)
        #expect(timing.began >= at && timing.began - at < 5_000_000, "began \(Double(Int64(timing.began) - Int64(at)) / 1e6) ms after its time")
        #expect(recorder.activeFaults.count == 1)
        try recorder.revert(cut)
        #expect(recorder.activeFaults.isEmpty && recorder.faultLog.count == 2)
    }

    @Test func statisticsAcrossRunsAndTwoSetsSideBySide() throws {
        func result(_ mbps: [Double], recovery: Double) -> RunResults {
            var r = RunResults(lab: "x", file: "x.yaml", started: Date(), durationSeconds: 10, hosts: [:], sampleIntervalSeconds: 0.1, events: [])
            r.workloads = [.init(name: "bulk", plugin: "iperf3", node: "c", target: "s", mptcp: true, started: 0, exitCode: 0, error: nil,
                                 series: [Series(name: "bulk (iperf3)", unit: "Mbit/s", times: mbps.indices.map(Double.init), values: mbps)])]
            r.impacts = [.init(event: "link-down p2 #2", impact: Impact(series: "bulk (iperf3)", before: 20, during: 10, after: 19, recoverySeconds: recovery))]
            return r
        }
        let a = [result([10, 20], recovery: 1), result([20, 20], recovery: 3), result([30, 30], recovery: 2)]
        let table = RunStatistics.table(a)
        #expect(table.contains("bulk throughput mean Mbit/s") && table.contains("21.67  20.00   7.64"), "\(table)")  // means 15, 20, 30
        let recovery = table.split(separator: "\n").first { $0.hasPrefix("link-down p2 / bulk: recovery s") }?.split(separator: " ").suffix(6)
        #expect(recovery.map(Array.init) == ["3", "2.00", "2.00", "1.00", "1.00", "3.00"], "repetition numbers pooled: \(table)")
        let cmp = RunStatistics.comparison(a, [result([40, 40], recovery: 1)], names: ("a", "b"))
        #expect(cmp.contains("+84.6 %"), "\(cmp)")  // 40 against 21.67
    }

    @Test func pathUseIsEachInterfacesShareOfTheBytesWhileTheWorkloadRan() throws {
        var r = RunResults(lab: "x", file: "x.yaml", started: Date(), durationSeconds: 10, hosts: [:], sampleIntervalSeconds: 0.1, events: [])
        func sample(_ t: Double, _ a: UInt64, _ b: UInt64) -> RunResults.RawSample {
            RunResults.RawSample(host: "local", t: t, counters: [InterfaceCounters(namespace: "pb.x.c", interface: "eth0", rxBytes: a, txBytes: 0),
                                                                 InterfaceCounters(namespace: "pb.x.c", interface: "eth1", rxBytes: b, txBytes: 0),
                                                                 InterfaceCounters(namespace: "pb.x.s", interface: "eth0", rxBytes: 999, txBytes: 0)])
        }
        r.rawCounters = [sample(0, 0, 0), sample(1, 100, 0), sample(2, 400, 100), sample(3, 700, 200)]
        var w = RunResults.WorkloadResult(name: "w", plugin: "iperf3", node: "c", target: "s", mptcp: true, started: 1, exitCode: 0, error: nil, series: [])
        w.ended = 3
        r.workloads = [w]
        r.computePathUse()
        let use = try #require(r.workloads[0].pathUse)
        #expect(abs((use["eth0"] ?? 0) - 0.75) < 1e-9 && abs((use["eth1"] ?? 0) - 0.25) < 1e-9, "\(use)")
    }
}
