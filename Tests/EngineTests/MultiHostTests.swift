import Foundation
import Testing
@testable import Engine
import TopologyModel

/// Labs over several hosts, driven through one recording fake per host; the agent's wire format;
/// inventories; the tunnel probe plan. No root, no kernel, no ssh.
@Suite struct MultiHostTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pb-state-\(UUID().uuidString)").path
    let mptcpVM = RecordingExecutor(host: "mptcp-vm")
    let plainVM = RecordingExecutor(host: "plain-vm")

    func thesis() throws -> Topology {
        try TopologyLoader.load(path: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("topologies/thesis-two-vms.yaml").path)
    }

    func controller() -> LabController {
        var c = LabController(store: StateStore(directory: dir), executors: ["mptcp-vm": mptcpVM, "plain-vm": plainVM], interrupted: { 0 })
        c.access = ["mptcp-vm": HostAccess(host: "mptcp-vm", ssh: "root@a"), "plain-vm": HostAccess(host: "plain-vm", ssh: "root@b")]
        return c
    }

    static func withMPTCP(_ on: Bool) -> Capabilities {
        Capabilities(checks: [.init(name: "mptcp", ok: on, detail: "", fix: ""), .init(name: "gretap", ok: true, detail: "", fix: ""),
                              .init(name: "netem", ok: true, detail: "", fix: ""), .init(name: "htb", ok: true, detail: "", fix: ""),
                              .init(name: "tbf", ok: true, detail: "", fix: ""), .init(name: "bridge", ok: true, detail: "", fix: ""),
                              .init(name: "veth", ok: true, detail: "", fix: "")])
    }

    @Test func underlayMTUsAreJournaledAndRestoredByDown() throws {
        let t = try thesis()
        mptcpVM.capabilitiesToReport = Self.withMPTCP(true); plainVM.capabilitiesToReport = Self.withMPTCP(true)
        let c = controller()
        let r = try c.up(t)
        #expect(r.outcome == .built && r.probes == 2, "one probe each way through the one tunnel")
        #expect(mptcpVM.interfaceMTUs["underlay0"] == 5000)
        let j = try #require(c.store.load("thesis").journal)
        #expect(j.changedMTUs?["mptcp-vm"] == [MTUChange(interface: "underlay0", mtu: 1500)])
        #expect(j.access?["plain-vm"]?.ssh == "root@b", "the journal says how to reach each host again")
        // The probes ran in the right namespaces, full size, don't fragment.
        let probes = plainVM.commands.filter { $0.argv.first == "ping" }
        #expect(probes.count == 1 && probes[0].namespace == "pb.thesis.server" && probes[0].argv.contains("1472") && probes[0].argv.contains("do"))
        let d = try c.down("thesis")
        #expect(mptcpVM.interfaceMTUs["underlay0"] == 1500 && plainVM.interfaceMTUs["underlay0"] == 1500)
        #expect(d.restoredMTUs.count == 2)
    }

    @Test func aTunnelThatDropsFullSizePacketsFailsUpAndRollsBackEveryHost() throws {
        let t = try thesis()
        mptcpVM.capabilitiesToReport = Self.withMPTCP(true); plainVM.capabilitiesToReport = Self.withMPTCP(true)
        // plain-vm's probe at 1472 bytes of payload fails; smaller ones pass up to 1400.
        for size in 1401...1472 { plainVM.exitCodes["ping -4 -n -q -M do -s \(size) -c 1 -i 0.2 -w 6 10.0.3.1"] = 1 }
        plainVM.exitCodes["ping -4 -n -q -M do -s 1472 -c 2 -i 0.2 -w 6 10.0.3.1"] = 1
        let c = controller()
        #expect {
            try c.up(t)
        } throws: { e in
            let text = "\(e)"
            return text.contains("MTU plan") && text.contains("server on plain-vm -> router") && text.contains("the largest that did was 1428 bytes")
        }
        #expect(mptcpVM.namespaceNames.isEmpty && plainVM.namespaceNames.isEmpty, "both hosts rolled back")
        #expect(mptcpVM.interfaceMTUs["underlay0"] == 1500, "the underlay MTU is put back too")
    }

    @Test func aHostDeclaredMPTCPWithoutItIsRefusedBeforeAnyChange() throws {
        let t = try thesis()
        mptcpVM.capabilitiesToReport = Self.withMPTCP(false); plainVM.capabilitiesToReport = Self.withMPTCP(false)
        #expect { try controller().up(t) } throws: { "\($0)".contains("mptcp-vm: mptcp") }
        #expect(mptcpVM.applied.isEmpty && plainVM.applied.isEmpty)
    }

    @Test func aPlainHostGetsMPTCPOffInItsNamespaces() throws {
        let plan = Planner.plan(try thesis())
        let plain = try #require(plan.hosts.first { $0.host == "plain-vm" })
        #expect(plain.operations.contains(.disableMPTCP(namespace: "pb.thesis.server")))
        #expect(!plan.hosts[0].operations.contains { if case .disableMPTCP = $0 { return true } else { return false } })
    }

    @Test func tunnelKeysInUseByAnotherLabAreRefused() throws {
        let t = try thesis()
        mptcpVM.capabilitiesToReport = Self.withMPTCP(true); plainVM.capabilitiesToReport = Self.withMPTCP(true)
        let key = try #require(t.links.first { $0.crossesHosts }?.tunnelKey)
        plainVM.keysInUse = [key: "eth0 in pb.other.server"]
        #expect { try controller().up(t) } throws: { "\($0)".contains("key \(key)") && "\($0)".contains("pb.other.server") }
        #expect(plainVM.applied.isEmpty)
        // The lab's own tunnel (a rebuild) is no clash.
        plainVM.keysInUse = [key: "eth0 in pb.thesis.server"]
        #expect(throws: Never.self) { try controller().up(t) }
    }

    @Test func requestsAndRepliesRoundTripOnTheWire() throws {
        var q = AgentRequest(id: 7, method: .apply)
        q.operations = Planner.plan(try thesis()).hosts[1].operations
        let line = try JSONEncoder().encode(q)
        #expect(!line.contains(0x0A), "one request, one line")
        let back = try JSONDecoder().decode(AgentRequest.self, from: line)
        #expect(back.id == 7 && back.method == .apply && back.operations == q.operations)
        var r = AgentReply(id: 7, event: .output)
        r.stream = .stderr; r.data = Data([0, 10, 255]).base64EncodedString()
        let rb = try JSONDecoder().decode(AgentReply.self, from: try JSONEncoder().encode(r))
        #expect(rb.event == .output && Data(base64Encoded: rb.data ?? "") == Data([0, 10, 255]) && rb.clock > 0)
    }

    @Test func theAgentIsStartedWithOneSharedSSHConnectionAndNeverPrompts() {
        var a = HostAccess(host: "h", ssh: "vagrant@192.168.56.10")
        a.port = 2222; a.identity = "/k"; a.pathbed = "sudo -n /usr/local/bin/pathbed"
        let argv = a.agentCommand(controlDirectory: "/run/x")
        #expect(argv.first == "ssh" && argv.contains("BatchMode=yes") && argv.contains("ControlMaster=auto") && argv.contains("ControlPath=/run/x/%C"))
        #expect(Array(argv.suffix(4)) == ["vagrant@192.168.56.10", "--", "sudo -n /usr/local/bin/pathbed", "agent"])
        #expect(argv.contains("2222") && argv.contains("/k"))
    }

    @Test func inventoriesResolveTheirFilesAndRefuseNonsense() throws {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pb-inv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: d) }
        let good = d.appendingPathComponent("good.json").path
        try #"{"hosts": {"a": {"ssh": "root@10.0.0.1", "identity": "keys/id", "port": 2200}, "b": {"vagrant": "."}}}"#.write(toFile: good, atomically: true, encoding: .utf8)
        let inv = try Inventory.read(good)
        #expect(inv.hosts["a"]?.identity == d.appendingPathComponent("keys/id").standardized.path)
        #expect(inv.hosts["b"]?.ssh == "b" && inv.hosts["b"]?.vagrant == d.standardized.path)
        for bad in [#"{"hosts": {"a": {"ssh": "-oProxyCommand=x"}}}"#, #"{"hosts": {"a": {"port": 70000, "ssh": "x"}}}"#, #"{"hosts": {"a": {}}}"#, "not json"] {
            let p = d.appendingPathComponent("bad.json").path
            try bad.write(toFile: p, atomically: true, encoding: .utf8)
            #expect { try Inventory.read(p) } throws: { "\($0)".contains("bad.json") }
        }
    }

    @Test func probesStandInForBridgeEndsWithANodeOnTheSameHost() throws {
        let probes = TunnelProbe.plan(try thesis())
        #expect(probes.count == 2)
        #expect(Set(probes.map(\.fromNamespace)) == ["pb.thesis.server", "pb.thesis.router"])
        #expect(probes.allSatisfy { $0.payload == 1472 })
    }
}
