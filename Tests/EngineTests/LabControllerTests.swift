import Foundation
import Testing
@testable import Engine
import HostTesting
import Hosts
import Planning
import TopologyModel

/// up, down, rollback, interrupts, journals and reconcile, driven through the recording fake:
/// no root, no kernel.
@Suite struct LabControllerTests {
    let scratch = ScratchDirectory()
    let dir: String
    let fake = RecordingExecutor(host: "local")
    var controller: LabController

    init() throws {
        dir = scratch.path
        controller = LabController(store: StateStore(directory: dir), executors: ["local": fake], interrupted: { 0 })
    }

    func lab(_ yaml: String) throws -> Topology { try TopologyLoader.load(data: Data(yaml.utf8), file: "test.yaml") }

    static let small = """
        name: small
        profiles: { slow: { rate: 10mbit }, slower: { rate: 5mbit } }
        nodes: { a: { routes: [ { to: default, via: 10.0.1.2 } ] }, b: { forwarding: true }, c: {} }
        links:
          - { endpoints: [a:eth0, b:eth0], subnet: 10.0.1.0/24, profile: slow }
          - { endpoints: [b:eth1, c:eth0], subnet: 10.0.2.0/24 }
        """

    @Test func upBuildsEverythingAndASecondUpChangesNothing() throws {
        let t = try lab(Self.small)
        let r = try controller.up(t)
        #expect(r.outcome == .built)
        #expect(Set(fake.namespaceNames()) == ["pb.small.a", "pb.small.b", "pb.small.c"])
        #expect(fake.applied == Planner.plan(t).hosts[0].operations)
        #expect(controller.store.load("small").journal?.state == .up)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/small.lock"), "the lock is released and removed")
        let again = try controller.up(t)
        #expect(again.outcome == .unchanged && fake.applied.count == r.operations)
    }

    @Test func aFailureMidwayRollsBackEverything() throws {
        let t = try lab(Self.small)
        fake.failAt = 10
        #expect(throws: RecordingExecutor.InjectedFailure.self) { try controller.up(t) }
        #expect(Set(fake.namespaceNames()).isEmpty, "rolled back")
        if case .missing = controller.store.load("small") {} else { Issue.record("the journal of a rolled-back up is removed") }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/small.lock"))
        // Every later operation index fails the same clean way.
        for at in [0, 1, 5, 20, Planner.plan(t).operationCount - 1] {
            let f = RecordingExecutor(host: "local"); f.failAt = at
            let c = LabController(store: controller.store, executors: ["local": f], interrupted: { 0 })
            #expect(throws: (any Error).self) { try c.up(t) }
            #expect(Set(f.namespaceNames()).isEmpty, "failure at \(at) left \(Set(f.namespaceNames()))")
        }
    }

    @Test func anInterruptRollsBackAndSaysSo() throws {
        let t = try lab(Self.small)
        var polls = 0
        let c = LabController(store: controller.store, executors: ["local": fake], interrupted: { polls += 1; return polls > 7 ? SIGINT : 0 })
        do {
            _ = try c.up(t)
            Issue.record("an interrupted up succeeded")
        } catch let e as LabError {
            #expect(e.message.contains("interrupted by SIGINT") && e.message.contains("removed"))
        }
        #expect(Set(fake.namespaceNames()).isEmpty)
    }

    @Test func aKilledUpIsCompletedByTheNextUp() throws {
        let t = try lab(Self.small)
        // What `kill -9` during up leaves: a building journal of a dead pid, some namespaces.
        try controller.store.save(LabJournal(lab: "small", file: "test.yaml", state: .building, planDigest: "x",
                                             namespaces: ["local": ["pb.small.a"]], plan: nil, pid: 999_999, started: Date()))
        fake.kernelNamespaces["pb.small.a"] = Ownership.namespaceTag(lab: "small")
        var messages: [String] = []
        let r = try controller.up(t, progress: { messages.append($0) })
        #expect(r.outcome == .built && r.recovered == 1)
        #expect(messages.contains { $0.contains("did not finish") })
        #expect(Set(fake.namespaceNames()).count == 3)
    }

    @Test func journalStatesAreEachHandled() throws {
        let t = try lab(Self.small)
        // Unreadable.
        try controller.store.prepare()
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: "\(dir)/small.json"))
        #expect(throws: LabError.self) { try controller.up(t) }
        #expect(controller.status("small").problems.contains { $0.contains("cannot be read") })
        controller.store.remove("small")
        // Missing, but the lab's tagged namespaces are there.
        fake.kernelNamespaces["pb.small.a"] = Ownership.namespaceTag(lab: "small")
        do { _ = try controller.up(t); Issue.record("accepted") } catch let e as LabError { #expect(e.message.contains("without a journal")) }
        #expect(controller.status("small").state == .orphaned)
        _ = try controller.down("small")
        #expect(Set(fake.namespaceNames()).isEmpty)
        // Up, then a namespace deleted by hand: status says degraded.
        _ = try controller.up(t)
        fake.kernelNamespaces["pb.small.b"] = nil
        #expect(controller.status("small").state == .degraded)
    }

    @Test func namespacesTheLabDidNotMakeAreNeverTouched() throws {
        let t = try lab(Self.small)
        fake.kernelNamespaces["pb.small.a"] = .some(nil)  // named like the lab's, no tag
        fake.kernelNamespaces["other"] = .some(nil)
        #expect(throws: LabError.self) { try controller.up(t) }
        let r = try controller.down("small")
        #expect(r.removed == 0 && r.foreign == ["pb.small.a"])
        #expect(Set(fake.namespaceNames()) == ["pb.small.a", "other"])
    }

    @Test func badLabNamesAreRefusedByDown() throws {
        for name in ["", "*", "laba.h1", "../x", "Upper", String(repeating: "a", count: 25)] {
            #expect(throws: LabError.self, "\(name)") { try controller.down(name) }
        }
        #expect(fake.removed.isEmpty)
    }

    @Test func anUnsafeStateDirectoryIsRefused() throws {
        let target = dir + "-target"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: target) }
        try FileManager.default.createSymbolicLink(atPath: dir, withDestinationPath: target)
        #expect(throws: LabError.self) { try StateStore(directory: dir).prepare() }
        unlink(dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o777)
        #expect(throws: LabError.self) { try StateStore(directory: dir).prepare() }
        chmod(dir, 0o700)
        // A symlink planted where the journal's temporary file goes is replaced, never followed.
        let victim = target + "/victim"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: victim))
        symlink(victim, "\(dir)/small.json.tmp")
        _ = try controller.up(try lab(Self.small))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep")
    }

    @Test func aChangedProfileIsChangedInPlace() throws {
        _ = try controller.up(try lab(Self.small))
        let before = fake.applied.count
        let changed = try lab(Self.small.replacingOccurrences(of: "profile: slow }", with: "profile: slower }"))
        let dry = try controller.up(changed, dryRun: true)
        #expect(dry.outcome == .dryRun && dry.changes.contains { $0.contains("change profile") && $0.contains("slow (tbf 10mbit") && $0.contains("-> slower (tbf 5mbit") }, "\(dry.changes)")
        #expect(fake.qdiscChanges.isEmpty, "a dry run changes nothing")
        let r = try controller.up(changed)
        #expect(r.outcome == .reconciled)
        #expect(fake.applied.count == before, "no namespace, link or address was touched")
        #expect(fake.qdiscChanges.map(\.0.description).sorted() == ["eth0@pb.small.a", "eth0@pb.small.b"])
        #expect(fake.qdiscChanges.allSatisfy { $0.1?.rateBitsPerSecond == 5_000_000 })
        #expect(try controller.up(changed).outcome == .unchanged)
    }

    @Test func addedNodesAreBuiltAndRemovedOnesDeleted() throws {
        _ = try controller.up(try lab(Self.small))
        let yaml = Self.small.replacingOccurrences(of: "c: {} }", with: "c: {}, d: {} }") + "\n  - { endpoints: [c:eth1, d:eth0], subnet: 10.0.3.0/24 }"
        let r = try controller.up(try lab(yaml))
        #expect(r.changes.contains { $0.contains("add pb.small.d") })
        #expect(Set(fake.namespaceNames()).contains("pb.small.d"))
        // c gets a new interface in place (its veth to d); nothing is rebuilt, nothing removed.
        #expect(r.changes.contains { $0.contains("change pb.small.c in place: link eth1 added") }, "\(r.changes)")
        #expect(!r.changes.contains { $0.contains("rebuild") } && fake.removed.isEmpty, "\(r.changes) \(fake.removed)")
        let shrunk = try controller.up(try lab(Self.small))
        #expect(shrunk.changes.contains { $0.contains("remove pb.small.d") })
        #expect(!Set(fake.namespaceNames()).contains("pb.small.d"))
    }

    /// Splitting a kernel bridge (`merge: false`) and joining it again, in place.
    @Test func mergedBridgesAreSplitAndJoinedInPlace() throws {
        let yaml = try String(contentsOf: repositoryRoot.appendingPathComponent("Tests/Fixtures/bridge-line.yaml"), encoding: .utf8)
        _ = try controller.up(try lab(yaml))
        #expect(fake.applied.filter { if case .createBridge = $0 { return true } else { return false } }.count == 1)
        let before = fake.applied.count
        let split = try controller.up(try lab(yaml.replacingOccurrences(of: "[s2, s3] }", with: "[s2, s3], merge: false }")))
        #expect(split.outcome == .reconciled)
        let added = Array(fake.applied[before...])
        #expect(added.contains(.createBridge(InterfaceRef(namespace: "pb.line", name: "s3"), stp: false, group: Ownership.group(lab: "line"))))
        #expect(added.contains(.enslave(InterfaceRef(namespace: "pb.line", name: "h3.eth0"), bridge: "s3")))
        #expect(added.contains(.enslave(InterfaceRef(namespace: "pb.line", name: "s2.s3"), bridge: "s1")))
        #expect(fake.removed.isEmpty, "no node was rebuilt")
        let joined = try controller.up(try lab(yaml))
        #expect(joined.outcome == .reconciled)
        #expect(Set(fake.deletedLinks.map(\.name)) == ["s3", "s2.s3"], "the bridge and the veth pair between the two go: \(fake.deletedLinks)")
        #expect(fake.applied.last == .enslave(InterfaceRef(namespace: "pb.line", name: "h3.eth0"), bridge: "s1"))
        #expect(try controller.up(try lab(yaml)).outcome == .unchanged)
    }

    @Test func aNamespaceDeletedByHandIsHealed() throws {
        let t = try lab(Self.small)
        _ = try controller.up(t)
        fake.kernelNamespaces["pb.small.c"] = nil
        let r = try controller.up(t)
        #expect(r.outcome == .reconciled && r.changes.contains { $0.contains("rebuild pb.small.c (its namespace is gone)") })
        #expect(Set(fake.namespaceNames()) == ["pb.small.a", "pb.small.b", "pb.small.c"])
        #expect(controller.status("small").state == .up)
    }
}
