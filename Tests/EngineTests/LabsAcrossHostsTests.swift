import Foundation
import Testing
@testable import Engine
import HostTesting
import Hosts
import Planning
import TopologyModel

/// Labs over several hosts, driven through one recording fake per host. No root, no kernel, no ssh.
@Suite struct LabsAcrossHostsTests {
    let scratch = ScratchDirectory()
    var dir: String { scratch.path }
    let mptcpVM = RecordingExecutor(host: "mptcp-vm")
    let plainVM = RecordingExecutor(host: "plain-vm")

    func thesis() throws -> Topology { try topology("thesis-two-vms.yaml") }

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

    /// What a kernel lacks is named with what in the file needs it: netem with each profile and
    /// its line, a congestion control the kernel has but does not allow in a namespace (it would
    /// fail with a bare EPERM) with the node, its line and how to allow it; nothing is changed.
    @Test func whatAKernelLacksIsNamedWithWhatNeedsItBeforeAnyChange() throws {
        var t = try thesis()
        let client = try #require(t.nodes.firstIndex { $0.name == "client" })
        #expect(t.nodes[client].congestionControl == "cubic")
        var caps = Self.withMPTCP(true)
        caps.checks = caps.checks.map { c in c.name == "netem" ? .init(name: "netem", ok: false, detail: "ENOENT", fix: "load sch_netem") : c }
        caps.congestionControls = ["reno", "bbr", "cubic"]
        caps.allowedCongestionControls = ["reno", "bbr"]
        mptcpVM.capabilitiesToReport = caps; plainVM.capabilitiesToReport = Self.withMPTCP(true)
        t.nodes[client].location = SourceLocation(file: "lab.yaml", line: 25, column: 3)
        let e = try #require(throws: LabError.self) { try controller().up(t) }
        let text = "\(e)"
        #expect(text.contains("netem: ENOENT; needed by profile wlan (") && text.contains("profile lte-lossy ("), "\(text)")
        #expect(text.contains("congestion control cubic, chosen by node client (lab.yaml:25:3), is available but not allowed"), "\(text)")
        #expect(text.contains("sysctl -w net.ipv4.tcp_allowed_congestion_control='reno bbr cubic'"), "\(text)")
        #expect(mptcpVM.applied.isEmpty && plainVM.applied.isEmpty)
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
        #expect(mptcpVM.namespaceNames().isEmpty && plainVM.namespaceNames().isEmpty, "both hosts rolled back")
        #expect(mptcpVM.interfaceMTUs["underlay0"] == 1500, "the underlay MTU is put back too")
    }

    @Test func aHostDeclaredMPTCPWithoutItIsRefusedBeforeAnyChange() throws {
        let t = try thesis()
        mptcpVM.capabilitiesToReport = Self.withMPTCP(false); plainVM.capabilitiesToReport = Self.withMPTCP(false)
        #expect { try controller().up(t) } throws: { "\($0)".contains("mptcp-vm: mptcp") }
        #expect(mptcpVM.applied.isEmpty && plainVM.applied.isEmpty)
    }

    @Test func tunnelKeysInUseByAnotherLabAreRefused() throws {
        let t = try thesis()
        mptcpVM.capabilitiesToReport = Self.withMPTCP(true); plainVM.capabilitiesToReport = Self.withMPTCP(true)
        let key = try #require(t.links.first { $0.crossesHosts }?.tunnelKey)
        plainVM.keysInUse = [TunnelID(kind: .gretap, id: key): TunnelUse(device: "eth0", namespace: "pb.other.server")]
        #expect { try controller().up(t) } throws: { "\($0)".contains("key \(key)") && "\($0)".contains("pb.other.server") }
        #expect(plainVM.applied.isEmpty)
        // The lab's own tunnel (a rebuild) is no clash.
        plainVM.keysInUse = [TunnelID(kind: .gretap, id: key): TunnelUse(device: "eth0", namespace: "pb.thesis.server")]
        #expect(throws: Never.self) { try controller().up(t) }
    }
}
