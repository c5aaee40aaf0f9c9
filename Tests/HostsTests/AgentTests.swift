import Foundation
import Testing
@testable import Hosts
import HostTesting
import Planning
import TopologyModel

/// The agent's wire: one message per line, a case per message with exactly its fields.
@Suite struct AgentWireTests {
    static let cut = FaultAction.partition(namespace: "pb.x.a", destinations: [IPNetwork("10.0.0.1/32")!])
    static let requests: [AgentRequest] = [
        .hello(protocol: AgentProtocol.version, version: pathbedVersion, host: "h"), .info, .capabilities(sysctls: ["net.ipv4.ip_forward"]),
        .apply(operations: [.createNamespace(name: "pb.x.a", lab: "x")]), .rollBack, .namespaceNames, .namespaces(lab: "x"),
        .interfaces(namespace: "pb.x.a"), .removeLab(lab: "x", waitForKernel: true), .stopProcesses(lab: "x", sparing: [12]), .stopProcesses(lab: "x", sparing: nil), .processes(lab: "x"), .removeNamespaces(names: ["pb.x.a"]),
        .deleteLink(link: InterfaceRef(namespace: "pb.x", name: "s1")), .setProfile(link: InterfaceRef(namespace: "pb.x.a", name: "eth0"), from: nil, to: nil),
        .restoreMTUs(mtus: [MTUChange(interface: "eth0", mtu: 1500)], lab: "thesis"), .heldMTUs(lab: "thesis", underlays: ["eth1", "192.168.56.10"]), .run(argv: ["true"], namespace: nil, timeout: 3, input: true), .tunnelKeys,
        .inject(actions: [cut], at: 123_456_789, revertAfter: 3), .revert(actions: [cut], at: nil),
        .sampleCounters(namespaces: ["pb.x.a"], sockets: ["pb.x.a"], interval: 0.1, duration: 5), .input(target: 3, data: "AAo=", close: true),
        .heartbeat, .cancel(target: 3), .bye,
    ]

    @Test(arguments: requests)
    func everyRequestIsOneLineOfItsOwnName(request: AgentRequest) throws {
        let line = try JSONEncoder().encode(RequestLine(id: 7, request))
        #expect(!line.contains(0x0A), "one request, one line")
        let object = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Any])
        #expect(Set(object.keys) == ["id", request.name], "\(object.keys)")
        let back = try JSONDecoder().decode(RequestLine.self, from: line)
        #expect(back.id == 7 && back.request == request)
    }

    @Test func repliesCarryTheirClockAndBytesAsTheyAre() throws {
        let r = ReplyLine(id: 7, .output(stream: .stderr, data: Data([0, 10, 255]).base64EncodedString()))
        let back = try JSONDecoder().decode(ReplyLine.self, from: try JSONEncoder().encode(r))
        guard case let .output(stream, data) = back.reply else { Issue.record("\(back.reply)"); return }
        #expect(back.id == 7 && stream == .stderr && Data(base64Encoded: data) == Data([0, 10, 255]) && back.clock > 0)
        let beat = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(ReplyLine(id: nil, .heartbeat))) as? [String: Any]
        #expect(beat?["id"] == nil && beat?["heartbeat"] != nil)
        // An error is its fields, as any message: what an agent of another release can still read.
        let failure = try JSONEncoder().encode(ReplyLine(id: 3, .failure(AgentError(kind: .protocolError, message: "m", fix: "f"))))
        let error = (try JSONSerialization.jsonObject(with: failure) as? [String: Any])?["error"] as? [String: Any]
        #expect(error?["kind"] as? String == "protocol" && error?["message"] as? String == "m" && error?["fix"] as? String == "f")
    }

    @Test func aLineThatIsNotARequestIsExplained() {
        func why(_ s: String) -> String {
            let d = Data(s.utf8)
            do { _ = try JSONDecoder().decode(RequestLine.self, from: d); return "decoded" } catch { return AgentServer.explain(d, error) }
        }
        #expect(why("[1]").contains("not a JSON object"))
        #expect(why(#"{"info": {}}"#).contains("integer `id`"))
        #expect(why(#"{"id": 1, "frobnicate": {}}"#).contains("no message is named `frobnicate`"))
        #expect(why(#"{"id": 1, "info": {}, "bye": {}}"#).contains("exactly one message"))
        #expect(why(#"{"id": 1, "cancel": {}}"#).contains("`cancel` is missing `target`"))
    }

    @Test func aLineTooLongIsDroppedAsItComesAndTheNextIsRead() throws {
        var p: [Int32] = [0, 0]
        pipe(&p)
        let writer = FileHandle(fileDescriptor: p[1], closeOnDealloc: true)
        Thread { writer.write(Data(repeating: 0x61, count: 300_000) + Data("\nnext\n".utf8)); try? writer.close() }.start()
        let r = LineReader(fd: p[0], limit: 100_000)
        guard case .tooLong = r.next() else { Issue.record("the long line was read"); return }
        guard case let .line(d) = r.next() else { Issue.record("the next line was lost"); return }
        #expect(String(decoding: d, as: UTF8.self) == "next")
        guard case .end = r.next() else { Issue.record("no end"); return }
        close(p[0])
    }

    /// Lines of every length, split across reads anywhere, come back whole and in order: a long
    /// line (8 MB, as a large lab's `apply`) among many short ones. (It was quadratic: each read
    /// searched the whole buffer again, and each line was cut from the front of it.)
    @Test func linesOfEveryLengthComeBackWholeAndInOrder() throws {
        var p: [Int32] = [0, 0]
        pipe(&p)
        var lines: [Data] = (0..<20_000).map { Data("line \($0)".utf8) }
        lines.insert(Data(repeating: 0x62, count: 8 << 20), at: 10_000)
        let all = lines
        let writer = FileHandle(fileDescriptor: p[1], closeOnDealloc: true)
        Thread { for l in all { writer.write(l + Data("\n".utf8)) }; try? writer.close() }.start()
        let r = LineReader(fd: p[0], limit: 64 << 20)
        var got: [Data] = []
        while case let .line(d) = r.next() { got.append(d) }
        #expect(got.count == all.count && got == all)
        close(p[0])
    }
}

/// The agent itself, serving a recording fake: the handshake, requests in order, errors that
/// say what was wrong, and what it does when its controller goes away.
@Suite struct AgentServerTests {
    @Test func aRequestBeforeHelloIsRefusedAndAnotherProtocolToo() throws {
        let a = AgentHarness()
        try a.send(1, .info)
        guard let e = try a.reply()?.reply.failure else { Issue.record("answered"); return }
        #expect(e.kind == .protocolError && e.message.contains("hello"))
        try a.send(2, .hello(protocol: AgentProtocol.version - 1, version: "0.1", host: "h"))
        guard let e2 = try a.reply()?.reply.failure else { Issue.record("greeted"); return }
        #expect(e2.message.contains("speaks protocol \(AgentProtocol.version)") && e2.fix?.contains("same Pathbed release") == true)
        #expect(a.closeInput())
    }

    @Test func helloThenRequestsInOrderEachAnsweredByItsID() throws {
        let a = AgentHarness()
        try a.send(1, .hello(protocol: AgentProtocol.version, version: pathbedVersion, host: "h"))
        guard case let .hello(version, host)? = try a.reply()?.reply else { Issue.record("no hello"); return }
        #expect(version == AgentProtocol.version && host.version == pathbedVersion)
        try a.send(2, .apply(operations: [.createNamespace(name: "pb.x.a", lab: "x")]))
        var last: ReplyLine?
        while let r = try a.reply(), r.id == 2 { last = r; if !r.reply.isEvent { break } }
        guard case .applied? = last?.reply else { Issue.record("\(String(describing: last))"); return }
        #expect(a.fake.namespaceNames() == ["pb.x.a"])
        try a.send(3, .namespaces(lab: "x"))
        guard case let .namespaces(n)? = try a.reply()?.reply else { Issue.record("no namespaces"); return }
        #expect(n.map(\.name) == ["pb.x.a"] && n[0].tagged)
        a.send(#"{"id": 4, "frobnicate": {}}"#)
        let bad = try a.reply()
        guard let e = bad?.reply.failure else { Issue.record("accepted"); return }
        #expect(bad?.id == 4 && e.kind == .protocolError && e.message.contains("frobnicate"))
        try a.send(5, .run(argv: [], namespace: nil, timeout: nil, input: false))
        guard let e5 = try a.reply()?.reply.failure else { Issue.record("ran nothing"); return }
        #expect(e5.message.contains("argv"))
        try a.send(6, .bye)
        #expect(a.waitForEnd())
        #expect(a.controllerGoneCalls >= 1, "the agent reverts its faults when its session ends")
    }

    @Test func theEndOfItsInputEndsTheAgentAndRevertsItsFaults() throws {
        let a = AgentHarness()
        try a.send(1, .hello(protocol: AgentProtocol.version, version: pathbedVersion, host: "h"))
        _ = try a.reply()
        #expect(a.closeInput())
        #expect(a.controllerGoneCalls >= 1)
    }

    /// A command the controller cancels is stopped, its process group with it (this machine's
    /// executor, a command in the host's own namespace: no root needed).
    @Test func aCancelledCommandIsStoppedAtOnce() throws {
        let a = AgentHarness(executor: LocalExecutor(host: "h"))
        try a.send(1, .hello(protocol: AgentProtocol.version, version: pathbedVersion, host: "h"))
        _ = try a.reply()
        try a.send(2, .run(argv: ["sh", "-c", "sleep 100 & sleep 100"], namespace: nil, timeout: nil, input: false))
        Thread.sleep(forTimeInterval: 0.3)
        let t0 = Date()
        try a.send(0, .cancel(target: 2))
        guard case let .exit(code)? = try a.reply(within: 10)?.reply else { Issue.record("no exit"); return }
        #expect(code == 143 && Date().timeIntervalSince(t0) < 3, "SIGTERM to its group: \(code) after \(Date().timeIntervalSince(t0)) s")
        try a.send(3, .bye)
        #expect(a.waitForEnd())
    }
}
