import Foundation
import Testing
@testable import Engine
import HostTesting
import Hosts
import Planning
import TopologyModel

/// Changing a running lab and owning it: routes, sysctls and MPTCP settings change in place; a
/// rebuilt node waits for the kernel to free its old devices; a change that fails puts the lab
/// back as it was; a run holds its lab; a host that is gone can be forgotten. Through the fake.
@Suite struct ChangingALabTests {
    let scratch = ScratchDirectory()
    var dir: String { scratch.path }
    let fake = RecordingExecutor(host: "local")
    var controller: LabController
    init() { controller = LabController(store: StateStore(directory: scratch.path), executors: ["local": fake], interrupted: { 0 }) }
    func lab(_ yaml: String) throws -> Topology { try TopologyLoader.load(data: Data(yaml.utf8), file: "test.yaml") }

    static let routed = """
        name: rt
        nodes:
          client: { routes: [ { to: default, via: 10.0.1.1 } ], mptcp: { endpoints: { eth0: subflow } } }
          router: { forwarding: true }
          server: { routes: [ { to: default, via: 10.0.2.1 } ] }
        links:
          - { endpoints: [router:eth0, client:eth0], subnet: 10.0.1.0/24 }
          - { endpoints: [router:eth1, server:eth0], subnet: 10.0.2.0/24 }
        """

    @Test func routesSysctlsAndMPTCPChangeInPlaceWithoutARebuild() throws {
        _ = try controller.up(try lab(Self.routed))
        let changed = Self.routed
            .replacingOccurrences(of: "client: { routes: [ { to: default, via: 10.0.1.1 } ]",
                                  with: "client: { sysctls: { net.ipv4.tcp_ecn: '1' }, routes: [ { to: 10.9.0.0/16, via: 10.0.1.1 }, { to: 10.8.0.0/16, via: 10.0.1.1 } ]")
            .replacingOccurrences(of: "mptcp: { endpoints: { eth0: subflow } }", with: "mptcp: { endpoints: { eth0: signal }, limits: { subflows: 4 } }")
        let before = fake.applied.count
        let r = try controller.up(try lab(changed))
        #expect(r.outcome == .reconciled && r.changes.contains { $0.contains("in place") && $0.contains("pb.rt.client") }, "\(r.changes)")
        #expect(fake.removed.isEmpty, "no namespace was rebuilt: \(fake.removed)")
        let done = fake.applied.dropFirst(before).map(\.command)
        #expect(done.contains { $0.contains("route del default via 10.0.1.1") }, "\(done)")
        #expect(done.contains { $0.contains("route add 10.9.0.0/16") } && done.contains { $0.contains("route add 10.8.0.0/16") })
        #expect(done.contains { $0.contains("mptcp endpoint delete id 1") } && done.contains { $0.contains("endpoint add 10.0.1.2 dev eth0 id 1 signal") })
        #expect(done.contains { $0.contains("net.ipv4.tcp_ecn=1") } && done.contains { $0.contains("limits set subflows 4") })
        #expect(!done.contains { $0.contains("link add") || $0.contains("netns add") })
        #expect(try controller.up(try lab(changed)).outcome == .unchanged)
        // A sysctl no longer set cannot be undone in place (its value before is not known): rebuilt.
        let back = try controller.up(try lab(Self.routed))
        #expect(back.changes.contains { $0.contains("rebuild") && $0.contains("pb.rt.client") }, "\(back.changes)")
    }

    @Test func aRebuiltNodesPeersAreAwaitedBeforeTheyAreMadeAgain() throws {
        // A sysctl no longer set rebuilds the client alone: the router keeps its namespace, and
        // the end of the client's veth there goes when the kernel frees the client's.
        _ = try controller.up(try lab(Self.routed.replacingOccurrences(of: "client: { routes:", with: "client: { sysctls: { net.ipv4.tcp_ecn: '1' }, routes:")))
        let before = fake.applied.count
        let r = try controller.up(try lab(Self.routed))
        #expect(fake.removed == ["pb.rt.client"], "\(r.changes)")
        let done = Array(fake.applied.dropFirst(before))
        let wait = done.firstIndex { if case let .awaitGone(r) = $0 { return r == InterfaceRef(namespace: "pb.rt.router", name: "eth0") } else { return false } }
        let remake = done.firstIndex { if case let .createVeth(a, _, _, _) = $0 { return a.name == "eth0" } else { return false } }
        #expect(wait != nil && remake != nil && wait! < remake!, "the router's old eth0 is gone before it is made again: \(done.map(\.command))")
    }

    @Test func aChangeThatFailsPutsTheLabBackAsItWas() throws {
        _ = try controller.up(try lab(Self.routed))
        let moved = Self.routed.replacingOccurrences(of: "subnet: 10.0.1.0/24", with: "subnet: 10.0.5.0/24").replacingOccurrences(of: "via: 10.0.1.1", with: "via: 10.0.5.1")
        fake.failAt = fake.applied.count + 3
        #expect { try controller.up(try lab(moved)) } throws: { "\($0)".contains("built again as it was before the change") }
        let j = try #require(controller.store.load("rt").journal)
        let digest = LabController.digest(Planner.plan(try lab(Self.routed)))
        #expect(j.state == .up && j.planDigest == digest, "the journal is the lab's before the change")
        #expect(Set(fake.namespaceNames()) == ["pb.rt.client", "pb.rt.router", "pb.rt.server"])
        fake.failAt = nil
        #expect(try controller.up(try lab(Self.routed)).outcome == .unchanged, "the lab is as its old file says")
    }

    @Test func aRunHoldsItsLabAndADeadRunsLeftoversAreStopped() throws {
        let t = try lab(Self.routed)
        _ = try controller.up(t, asRun: true)
        #expect(controller.store.load("rt").journal?.runPID == getpid())
        controller.releaseRun("rt")
        #expect(controller.store.load("rt").journal?.runPID == nil)
        // A run that was killed: its pid is gone; the next `up` stops what it left in the lab.
        var j = try #require(controller.store.load("rt").journal)
        j.runPID = Self.deadPID()
        try controller.store.save(j)
        fake.processesInLab["rt"] = 2
        let r = try controller.up(t)
        #expect(r.outcome == .reconciled && r.changes.contains { $0.contains("stopped 2 processes") }, "\(r.changes)")
        #expect(controller.store.load("rt").journal?.runPID == nil)
        #expect(try controller.up(t).outcome == .unchanged)
    }

    @Test func aHostThatIsGoneIsForgottenOnlyWhenAsked() throws {
        let there = RecordingExecutor(host: "there")
        var c = LabController(store: StateStore(directory: dir), executors: ["local": fake, "there": there], interrupted: { 0 })
        c.access = ["local": HostAccess(host: "local"), "there": HostAccess(host: "there", ssh: "root@x")]
        _ = try c.up(try lab(Self.routed))
        there.unreachable = LabError("lost the connection to host 'there'")
        #expect { try c.down("rt") } throws: { "\($0)".contains("cannot be reached") && "\($0)".contains("--forget-unreachable") }
        #expect(c.store.load("rt").journal != nil, "the journal is kept")
        let d = try c.down("rt", forgetUnreachable: true)
        #expect(d.forgotten.count == 1 && d.forgotten[0].hasPrefix("there") && d.removed == 3)
        #expect(c.store.load("rt").journal == nil)
    }

    /// A pid no process has (the highest the kernel hands out, plus one).
    static func deadPID() -> Int32 {
        let max = (try? String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 4_194_304
        return max + 1
    }
}
