import Foundation
import Testing
@testable import Hosts
import Planning

/// Every command ends with its run: one whose child leaves its process group and keeps its
/// output open does not hold `run` up, and that child is found and ended. (Commands in this
/// machine's own namespace: no root needed.)
@Suite struct CommandRunnerTests {
    static func alive(_ pid: pid_t) -> Bool { kill(pid, 0) == 0 && !ProcessStopper.isZombie(pid) }

    @Test func aChildThatLeftItsGroupAndHoldsTheOutputIsEnded() throws {
        let t0 = Date()
        var out = Data()
        // The child leaves the group (setsid), keeps stdout, and prints its pid.
        let code = try CommandRunner.run(["sh", "-c", "setsid sh -c 'echo $$; exec sleep 10000' & sleep 0.3; exit 3"], in: nil, timeout: 30) { s, d in
            if s == .stdout { out.append(d) }
        }
        let took = Date().timeIntervalSince(t0)
        #expect(code == 3 && took < 5, "the command's own exit, not the child's end: \(code) after \(took) s")
        let pid = try #require(pid_t(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        let deadline = Date().addingTimeInterval(3)
        while Self.alive(pid) && Date() < deadline { usleep(20_000) }
        #expect(!Self.alive(pid), "the child that left its group was ended")
    }

    @Test func aStoppedCommandTakesItsEscapedChildrenWithIt() throws {
        let stopAt = Date().addingTimeInterval(0.5)
        var out = Data()
        let code = try CommandRunner.run(["sh", "-c", "setsid sleep 10000 & echo $!; wait"], in: nil, timeout: 30, stop: { Date() > stopAt }) { s, d in
            if s == .stdout { out.append(d) }
        }
        #expect(code == 143, "SIGTERM at the stop")
        let pid = try #require(pid_t(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        usleep(200_000)
        #expect(!Self.alive(pid))
    }

    @Test func aDaemonThatLetGoOfItsOutputOutlivesItsCommandUntilTheRunEnds() throws {
        var out = Data()
        _ = try CommandRunner.run(["sh", "-c", "setsid sleep 10000 </dev/null >/dev/null 2>&1 & echo $!"], in: nil, timeout: 30) { s, d in
            if s == .stdout { out.append(d) }
        }
        let pid = try #require(pid_t(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(Self.alive(pid), "a command may start a daemon (iperf3 -D) that outlives it")
        CommandRunner.endLeftovers()
        usleep(200_000)
        #expect(!Self.alive(pid), "and it ends with the run (or the agent's session)")
    }

    @Test func anEmptyCommandIsRefused() {
        #expect(throws: LabError.self) { try CommandRunner.run([], in: nil) { _, _ in } }
        #expect(throws: LabError.self) { try CommandRunner.run([""], in: nil) { _, _ in } }
    }

    @Test func anInventoryCommandThatNamesNoProgramIsRefused() throws {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pb-inv-\(UUID().uuidString).json").path
        defer { unlink(d) }
        try #"{"hosts": {"a": {"command": []}}}"#.write(toFile: d, atomically: true, encoding: .utf8)
        #expect { try Inventory.read(d) } throws: { "\($0)".contains("`command` must name a program") && "\($0)".contains(d) }
    }

    /// What an agent is asked to act on must be a lab's, and a change set for hours from now is refused.
    @Test func theExecutorActsOnlyOnALabsNamespacesAndOnlySoon() throws {
        let e = LocalExecutor(host: "h")
        #expect { try e.removeNamespaces(["someone-elses"]) } throws: { "\($0)".contains("no Pathbed lab made it") }
        let cut = FaultAction.partition(namespace: "pb.x.a", destinations: [])
        #expect { try e.change([cut], inject: true, at: monotonicNanoseconds() + 7_200_000_000_000, revertAfter: 3) } throws: { "\($0)".contains("at most an hour ahead") }
    }
}
