import Foundation
import Testing
@testable import Engine
import HostTesting
import Hosts
import Planning
import TopologyModel

/// Labs over any number of hosts, each host a recording fake: a ring of hosts with a link from
/// each to the next (gretap) and chords across the ring carried by VXLAN. No root, no kernel.
@Suite struct ManyHostsTests {
    let scratch = ScratchDirectory()

    /// N hosts h0..h(N-1), a node per host, a gretap link from each to the next around the ring,
    /// and a vxlan chord from h0 to every host that is not its neighbour.
    static func ring(_ n: Int, mtu: Int = 1600) -> String {
        var text = "name: ring\nhosts:\n"
        for i in 0..<n { text += "  h\(i): { ssh: root@10.9.0.\(10 + i), underlay: 10.9.0.\(10 + i), mtu: \(mtu) }\n" }
        text += "nodes:\n"
        for i in 0..<n { text += "  n\(i): { host: h\(i) }\n" }
        text += "links:\n"
        for i in 0..<n { text += "  - { name: ring\(i), endpoints: [n\(i):r\(i), n\((i + 1) % n):l\(i)], subnet: 10.10.\(i).0/24 }\n" }
        for j in 2..<max(2, n - 1) { text += "  - { name: chord\(j), endpoints: [n0:c\(j), n\(j):c0], subnet: 10.11.\(j).0/24, tunnel: vxlan }\n" }
        return text
    }

    static func capabilities() -> Capabilities {
        Capabilities(checks: ["mptcp", "gretap", "vxlan", "netem", "htb", "tbf", "bridge", "veth", "namespaces"].map { .init(name: $0, ok: true, detail: "", fix: "") })
    }

    func controller(_ executors: [RecordingExecutor]) -> LabController {
        var c = LabController(store: StateStore(directory: scratch.path), executors: Dictionary(uniqueKeysWithValues: executors.map { ($0.host, $0 as HostExecutor) }),
                              interrupted: { 0 })
        c.access = Dictionary(uniqueKeysWithValues: executors.enumerated().map { ($1.host, HostAccess(host: $1.host, ssh: "root@10.9.0.\(10 + $0)")) })
        return c
    }

    static func tunnels(_ ops: [LabOperation]) -> [(TunnelID, IPAddress, IPAddress)] {
        ops.compactMap {
            switch $0 {
            case let .createGretap(_, local, remote, key, _, _): (TunnelID(kind: .gretap, id: key), local, remote)
            case let .createVxlan(_, local, remote, vni, _, _): (TunnelID(kind: .vxlan, id: vni), local, remote)
            default: nil
            }
        }
    }

    @Test(arguments: [3, 5, 8])
    func everyHostBuildsItsEndsOfEveryTunnelAndDownUndoesIt(_ n: Int) throws {
        let t = try TopologyLoader.load(data: Data(Self.ring(n).utf8), file: "ring.yaml")
        let hosts = (0..<n).map { RecordingExecutor(host: "h\($0)") }
        for h in hosts { h.capabilitiesToReport = Self.capabilities() }
        let c = controller(hosts)
        let r = try c.up(t)
        let chords = max(0, n - 3)
        #expect(r.outcome == .built && r.probes == 2 * (n + chords), "a probe each way through each of the \(n + chords) tunnels: \(r.probes)")
        var all: [TunnelID: Int] = [:]
        for (i, h) in hosts.enumerated() {
            let mine = Self.tunnels(h.applied)
            // Two ring neighbours, and h0 (or each chord's far end) its chords.
            let expected = 2 + (i == 0 ? chords : ((2..<max(2, n - 1)).contains(i) ? 1 : 0))
            #expect(mine.count == expected, "h\(i) holds \(mine.count) tunnel ends, not \(expected)")
            for (id, local, remote) in mine {
                all[id, default: 0] += 1
                #expect(local == IPAddress("10.9.0.\(10 + i)"), "h\(i)'s ends start at its own underlay")
                #expect(remote != local)
            }
            #expect(h.interfaceMTUs["underlay0"] == 1600, "h\(i)'s underlay raised")
        }
        // Each tunnel has exactly two ends, on the two hosts it joins; ids never repeat in the lab.
        #expect(all.count == n + chords && all.values.allSatisfy { $0 == 2 }, "\(all)")
        #expect(all.keys.filter { $0.kind == .vxlan }.count == chords)
        #expect(all.keys.filter { $0.kind == .vxlan }.allSatisfy { $0.id < 1 << 24 && $0.id > 0 })
        _ = try c.down("ring")
        for h in hosts { #expect(h.interfaceMTUs["underlay0"] == 1500, "h\(h.host)'s underlay put back") }
    }

    @Test func aVNIInUseOnAnyHostIsRefusedBeforeAnyChange() throws {
        let t = try TopologyLoader.load(data: Data(Self.ring(5).utf8), file: "ring.yaml")
        let hosts = (0..<5).map { RecordingExecutor(host: "h\($0)") }
        for h in hosts { h.capabilitiesToReport = Self.capabilities() }
        let vni = try #require(t.links.first { $0.tunnel == .vxlan }?.tunnelKey)
        // The same number as a GRE key is no clash: another kind of tunnel.
        hosts[2].keysInUse = [TunnelID(kind: .gretap, id: vni): TunnelUse(device: "gt", namespace: nil)]
        #expect(throws: Never.self) { try controller(hosts).up(t) }
        _ = try controller(hosts).down("ring")
        let before = hosts.map(\.applied.count)
        hosts[2].keysInUse = [TunnelID(kind: .vxlan, id: vni): TunnelUse(device: "vx", namespace: "pb.other.x")]
        #expect { try controller(hosts).up(t) } throws: { "\($0)".contains("vxlan VNI \(vni)") && "\($0)".contains("pb.other.x") }
        #expect(hosts.map(\.applied.count) == before, "nothing changed on any host")
    }

    @Test func aHostWithoutVXLANIsNamedWithTheLinksThatNeedIt() throws {
        let t = try TopologyLoader.load(data: Data(Self.ring(4).utf8), file: "ring.yaml")
        let hosts = (0..<4).map { RecordingExecutor(host: "h\($0)") }
        for h in hosts { h.capabilitiesToReport = Self.capabilities() }
        var caps = Self.capabilities()
        caps.checks = caps.checks.map { $0.name == "vxlan" ? .init(name: "vxlan", ok: false, detail: "EOPNOTSUPP", fix: "load vxlan") : $0 }
        hosts[2].capabilitiesToReport = caps
        #expect { try controller(hosts).up(t) } throws: { "\($0)".contains("h2") && "\($0)".contains("vxlan") }
        #expect(hosts.allSatisfy { $0.applied.isEmpty })
    }

    @Test func theMTUPlanCountsEachTunnelsOwnOverhead() throws {
        // 1545 bytes of underlay: a gretap frame of 1500 (+42) fits, a vxlan one (+50) does not.
        let e = try #require(throws: TopologyErrors.self) { try TopologyLoader.load(data: Data(Self.ring(4, mtu: 1545).utf8), file: "ring.yaml") }
        #expect("\(e)".contains("vxlan tunnel") && "\(e)".contains("tunnel overhead 50 bytes") && "\(e)".contains("at least 1550"), "\(e)")
        #expect(!"\(e)".contains("gretap tunnel"), "the gretap links fit: \(e)")
        // The lab's `tunnel:` carries every link between hosts unless a link says otherwise.
        let all = try TopologyLoader.load(data: Data(("tunnel: vxlan\n" + Self.ring(4)).utf8), file: "ring.yaml")
        #expect(all.links.allSatisfy { $0.tunnel == .vxlan })
        // A host without GRE: its links go in VXLAN, the others stay gretap; a link's own choice wins.
        let host = try TopologyLoader.load(data: Data(Self.ring(4).replacingOccurrences(of: "h2: { ssh", with: "h2: { tunnel: vxlan, ssh")
            .replacingOccurrences(of: "subnet: 10.10.1.0/24 }", with: "subnet: 10.10.1.0/24, tunnel: gretap }").utf8), file: "ring.yaml")
        let kinds = Dictionary(uniqueKeysWithValues: host.links.map { ($0.name, $0.tunnel) })
        #expect(kinds == ["ring0": .gretap, "ring1": .gretap, "ring2": .vxlan, "ring3": .gretap, "chord2": .vxlan], "\(kinds)")
        let bad = try #require(throws: TopologyErrors.self) { try TopologyLoader.load(data: Data(("tunnel: geneve\n" + Self.ring(3)).utf8), file: "ring.yaml") }
        #expect("\(bad)".contains("ring.yaml:1:9") && "\(bad)".contains("'geneve' is not a tunnel kind"), "\(bad)")
    }
}
