import Engine
import Foundation
import HostTesting
import Hosts
import Planning
@testable import Runs
import Testing
import TopologyModel

/// Faults that overlap on one object compose: what another window still holds is made again,
/// not undone, and only what no window holds is reverted. Played on a recording fake.
@Suite struct SchedulePlayerTests {
    func play(_ schedule: String, until end: Double) throws -> RecordingExecutor {
        let t = try twoPathLab(schedule)
        let fake = RecordingExecutor(host: "local")
        let lab = LabController(store: StateStore(directory: FileManager.default.temporaryDirectory.appendingPathComponent("pb-sp-\(UUID().uuidString)").path),
                                executors: ["local": fake], interrupted: { 0 })
        let windows = Faults.windows(t, Planner.plan(t), runLength: 200).windows
        let clock = RunClock()
        let player = SchedulePlayer(lab: lab, labName: t.name, windows: windows, clock: clock, stop: StopFlag(), progress: { _ in })
        clock.start()
        while clock.now < end { if try !player.playDue() { usleep(2_000) } }
        try player.finish()
        return fake
    }

    @Test func twoLinkDownsOnOneLinkKeepItDownUntilTheLastEnds() throws {
        let fake = try play("""
              - { at: 0.1s, fault: link-down, link: p1, for: 0.4s }
              - { at: 0.2s, fault: link-down, link: p1, for: 0.6s }
            """, until: 1.0)
        let log = fake.faultLog.map { ($0.0.key, $0.1) }
        let reverts = log.indices.filter { !log[$0].1 }
        #expect(reverts.count == 2, "one revert per link end, when the second fault ends: \(log)")
        #expect(reverts.allSatisfy { $0 >= log.count - 2 }, "nothing was brought up while the second fault held the link: \(log)")
        #expect(fake.activeFaults.isEmpty)
    }

    @Test func overlappingPartitionsLiftOnlyWhatNoneStillNeeds() throws {
        let fake = try play("""
              - { at: 0.1s, fault: partition, nodes: [server], for: 0.4s }
              - { at: 0.2s, fault: partition, nodes: [server, router], for: 0.6s }
            """, until: 1.0)
        #expect(fake.activeFaults.isEmpty, "every rule is lifted in the end")
        // When the first ended, the server's rules the second still needs stayed in force.
        let serverCuts = fake.faultLog.filter { if case let .partition(ns, _) = $0.0 { return ns == "pb.rp.server" } else { return false } }
        let lastRevert = serverCuts.lastIndex { !$0.1 }!, firstRevert = serverCuts.firstIndex { !$0.1 }!
        #expect(firstRevert < lastRevert)
    }
}
