import Foundation
import Testing
@testable import Hosts
import Planning
import TopologyModel

/// The guard that reverts faults by itself: any deadline an agent request can carry is a
/// deadline, never a trap.
@Suite struct FaultGuardTests {
    @Test func anyNumberOfSecondsIsADeadline() {
        let now = monotonicNanoseconds()
        #expect(FaultGuard.deadline(after: 1e300) == UInt64.max)
        #expect(FaultGuard.deadline(after: .infinity) <= monotonicNanoseconds(), "not finite: now")
        #expect(FaultGuard.deadline(after: .nan) <= monotonicNanoseconds())
        #expect(FaultGuard.deadline(after: -5) <= monotonicNanoseconds())
        let three = FaultGuard.deadline(after: 3)
        #expect(three >= now + 3_000_000_000 && three < now + 4_000_000_000)
    }

    @Test func anArmedFaultIsRevertedAtItsDeadlineByWhatItsOwnerGave() throws {
        let reverted = Counter()
        let g = FaultGuard { _ in reverted.add() }
        let a = FaultAction.partition(namespace: "pb.x.a", destinations: [IPNetwork("10.0.0.1/32")!])
        g.arm(a, after: 0.05)
        g.arm(FaultAction.partition(namespace: "pb.x.b", destinations: []), after: 1e300)
        let deadline = Date().addingTimeInterval(5)
        while reverted.value == 0 && Date() < deadline { usleep(10_000) }
        #expect(reverted.value == 1 && g.armedActions.count == 1)
        #expect(g.revertAll().isEmpty && reverted.value == 2 && g.armedActions.isEmpty)
    }
}
