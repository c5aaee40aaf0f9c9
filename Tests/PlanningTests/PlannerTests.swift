import Foundation
import NetlinkTypes
import Testing
@testable import Planning
import TopologyModel

@Suite struct PlannerTests {
    @Test func twoVMPlanHasTunnelsOnBothHosts() throws {
        let plan = Planner.plan(try topology("thesis-two-vms.yaml"))
        #expect(plan.hosts.map(\.host) == ["mptcp-vm", "plain-vm"])
        var keys: [UInt32] = []
        for h in plan.hosts {
            let gretaps = h.operations.compactMap { op -> (InterfaceRef, IPAddress, IPAddress, UInt32, UInt32)? in
                if case let .createGretap(r, local, remote, key, mtu, _) = op { return (r, local, remote, key, mtu) } else { return nil }
            }
            #expect(gretaps.count == 1, "\(h.host)")
            #expect(gretaps.first?.4 == 1500)
            keys += gretaps.map(\.3)
            let underlay = h.host == "mptcp-vm" ? "192.168.56.10" : "192.168.56.11"
            #expect(h.operations.first == .setUnderlayMTU(interface: nil, address: IPAddress(underlay), mtu: 5000))
        }
        #expect(Set(keys).count == 1, "both ends of a tunnel share its key")
        let mptcpVM = plan.hosts[0].operations, plainVM = plan.hosts[1].operations
        #expect(mptcpVM.contains(.createNamespace(name: "pb.thesis", lab: "thesis")))
        #expect(mptcpVM.contains(.createNamespace(name: "pb.thesis.client", lab: "thesis")))
        #expect(plainVM.contains(.createNamespace(name: "pb.thesis.server", lab: "thesis")))
        #expect(!plainVM.contains(.createNamespace(name: "pb.thesis.client", lab: "thesis")))
        // The plain VM's lab namespaces get MPTCP off, and nothing else about MPTCP.
        #expect(plainVM.contains(.disableMPTCP(namespace: "pb.thesis.server")))
        #expect(plainVM.filter { $0.command.contains("mptcp") } == [.disableMPTCP(namespace: "pb.thesis.server")])
        #expect(mptcpVM.contains(.createVeth(InterfaceRef(namespace: "pb.thesis.router", name: "wlan0"),
                                             peer: InterfaceRef(namespace: "pb.thesis.client", name: "wlan0"), mtu: 1500,
                                             group: Ownership.group(lab: "thesis"))))
    }

    @Test func operationsComeInDependencyOrder() throws {
        for name in ["thesis-two-vms.yaml", "thesis-one-machine.yaml", "two-paths.yaml"] {
            for h in Planner.plan(try topology(name)).hosts {
                let ranks = h.operations.map(\.phaseRank)
                #expect(ranks == ranks.sorted(), "\(name) \(h.host)")
            }
        }
    }

    @Test func sourceRoutingForMultihomedMPTCPClient() throws {
        let ops = Planner.plan(try topology("two-paths.yaml")).hosts[0].operations.map(\.command)
        #expect(ops.contains("ip -n pb.two-paths.client rule add from 10.0.1.2 table 100 priority 1000"))
        #expect(ops.contains("ip -n pb.two-paths.client rule add from 10.0.2.2 table 101 priority 1001"))
        #expect(ops.contains("ip -n pb.two-paths.client route add default via 10.0.2.1 dev eth2 metric 100 table 101"))
        #expect(ops.contains("ip -n pb.two-paths.client mptcp endpoint add 10.0.2.2 dev eth2 id 2 subflow"))
    }

    @Test func queuesFollowTheBandwidthDelayProduct() throws {
        var lte = LinkProfile(name: "lte", location: SourceLocation(file: "", line: 0, column: 0))
        lte.rate = try Bitrate.parse("10mbit").get()
        lte.delay = try Duration.parse("50ms").get()
        let q = try #require(QueueSizing.qdisc(for: lte, mtu: 1500))
        #expect(q.kinds == [.htb, .netem])
        // 10 Mbit/s for 50 ms is 42 frames in flight; a standing queue of one BDP (100 ms) is 83.
        #expect(q.netem.map { Int($0.limitPackets) } == 42 + 83)
        var fast = lte
        fast.rate = try Bitrate.parse("1gbit").get()
        #expect(try #require(QueueSizing.qdisc(for: fast, mtu: 1500)?.netem?.limitPackets) > 10 * 125)
        var rateOnly = LinkProfile(name: "r", location: lte.location)
        rateOnly.rate = lte.rate
        let r = try #require(QueueSizing.qdisc(for: rateOnly, mtu: 1500))
        #expect(r.kinds == [.tbf] && r.shaping.limitBytes == UInt32(QueueSizing.minimumPackets * 1514))
    }

    /// Each `queue:` choice gives the length it says: a time at the rate (plus what the delay
    /// holds), packets, netem's 1000; and a rate-only profile's tbf fifo holds the same time.
    @Test func everyQueueChoiceHasTheLengthItSays() throws {
        var p = LinkProfile(name: "p", location: SourceLocation(file: "", line: 0, column: 0))
        p.rate = try Bitrate.parse("10mbit").get()
        p.delay = try Duration.parse("50ms").get()
        func limit(_ q: LinkProfile.Queue?) throws -> Int {
            var c = p; c.queue = q
            return Int(try #require(QueueSizing.qdisc(for: c, mtu: 1500)?.netem?.limitPackets))
        }
        // 825.6 frames per second: 42 in flight for the delay, and the standing queue (a BDP: 83).
        #expect(try limit(nil) == 42 + 83)
        #expect(try limit(.bdp) == 42 + 83)
        #expect(try limit(.time(.ms(20))) == 42 + 17)
        #expect(try limit(.packets(300)) == 300)
        #expect(try limit(.netem) == 1000)
        var rateOnly = LinkProfile(name: "r", location: p.location)
        rateOnly.rate = p.rate
        rateOnly.queue = .time(.ms(100))
        let tbf = try #require(QueueSizing.qdisc(for: rateOnly, mtu: 1500))
        #expect(tbf.shaping.limitBytes == UInt32(83 * 1514))
        let stated = tbf.queue(mtu: 1500)
        #expect(stated.packets == 83)
        #expect(stated.forDelay == 0 && abs((stated.milliseconds ?? 0) - 100.5) < 0.1)
        // The validator refuses `queue` past tbf's range with the netlink layer's limit.
        #expect(LinkProfile.tbfMaxBitsPerSecond == Shaping.tbfMaxBitsPerSecond)
        // The default floor: 44 packets for a link without delay, at any rate whose bucket is smaller
        // (a LAN of 50 Mbit/s: 44 packets, 10.7 ms, not 20 ms of the rate; origin.md's RTT under load).
        rateOnly.queue = nil
        #expect(try #require(QueueSizing.qdisc(for: rateOnly, mtu: 1500)).queue(mtu: 1500).packets == QueueSizing.minimumPackets)
        rateOnly.rate = try Bitrate.parse("50mbit").get()
        let lan = try #require(QueueSizing.qdisc(for: rateOnly, mtu: 1500)).queue(mtu: 1500)
        #expect(lan.packets == QueueSizing.minimumPackets && abs((lan.milliseconds ?? 0) - 10.7) < 0.1)
    }

    /// `plan` and a run's results state every shaped direction's queue, with the rule it follows.
    @Test func everyShapedDirectionStatesItsQueue() throws {
        let yaml = """
            name: queues
            profiles:
              wlan: { rate: 20mbit, delay: 10ms }
              long: { rate: 10mbit, queue: 100ms }
              fixed: { rate: 10mbit, delay: 1ms, queue: 1000, direction: forward }
            nodes: { a: {}, b: {}, c: {} }
            links:
              - { name: w, endpoints: [a:eth0, b:eth0], profile: wlan }
              - { name: l, endpoints: [a:eth1, c:eth0], profile: long }
              - { name: f, endpoints: [b:eth1, c:eth1], profile: fixed }
              - { name: plain, endpoints: [a:eth2, c:eth2] }
            """
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "queues.yaml")
        let q = ShapedQueue.of(t)
        #expect(q.map { "\($0.link) \($0.end)" } == ["w a:eth0", "w b:eth0", "l a:eth1", "l c:eth0", "f b:eth1"])
        #expect(q.map(\.rule) == ["bdp", "bdp", "100ms", "100ms", "1000 packets"])
        // WLAN: 17 frames for 10 ms and a standing queue of one GSO burst (44; the BDP is 34).
        #expect(q[0].packets == 17 + 44)
        #expect(q[2].packets == 83 && q[4].packets == 1000)
        #expect(abs((q[4].milliseconds ?? 0) - 1210.0) < 0.1)
        let text = PlanText.render(Planner.plan(t), topology: t)
        #expect(text.contains("queues ("))
        #expect(text.contains("  f b:eth1 (fixed, 1000 packets): 1000 packets, 1 held for the delay, 999 queued: 1210.0 ms at the rate"))
        #expect(q[0].forDelay == 17 && abs((q[0].milliseconds ?? 0) - 26.6) < 0.1)
        #expect(q.allSatisfy { $0.during == nil })
    }

    /// A `profile` fault's queues are stated too: both directions of its link, for its window
    /// (in `plan`, `plan --json` and results.json), after the file's own.
    @Test func aProfileFaultStatesTheQueuesItInstalls() throws {
        let yaml = """
            name: faultqueues
            profiles:
              fast: { rate: 20mbit, direction: forward }
              slow: { rate: 1mbit, delay: 50ms }
            nodes: { a: {}, b: {} }
            links: [ { name: p, endpoints: [a:eth0, b:eth0], profile: fast, subnet: 10.9.0.0/24 } ]
            workloads: [ { name: rtt, plugin: ping, client: a, server: b, duration: 10s } ]
            schedule: [ { at: 2s, fault: profile, link: p, profile: slow, for: 3s } ]
            """
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "faultqueues.yaml")
        let q = ShapedQueue.of(t)
        #expect(q.map { "\($0.end) \($0.profile) \($0.during ?? "-")" } == ["a:eth0 fast -", "a:eth0 slow fault 1 (profile)", "b:eth0 slow fault 1 (profile)"])
        // 1 Mbit/s for 50 ms: 5 frames held, and a standing queue of 44 (the BDP is 9).
        #expect(q[1].packets == 5 + 44 && q[1].forDelay == 5)
        #expect(PlanText.render(Planner.plan(t), topology: t).contains("p b:eth0 (slow, bdp): 49 packets, 5 held for the delay, 44 queued: 532.9 ms at the rate, during fault 1 (profile)"))
    }

    /// A multihomed MPTCP client with one default route: each further interface's source-routing
    /// table gets a default through its link's one forwarding neighbour (a router, or the only
    /// router on a bridge), where none of the file's routes reaches it; none where the neighbour
    /// does not forward. (Found by a new user: 8 MP_JOINs left the client and none arrived.)
    @Test func sourceRoutingTablesGetTheirLinksOneRouter() throws {
        let yaml = """
            name: threepaths
            nodes:
              client:
                mptcp: { endpoints: { wlan0: subflow, lte0: subflow, sat0: subflow, lan0: subflow }, limits: { subflows: 4 } }
                routes: [ { to: default, via: 10.0.1.1 } ]
              router: { forwarding: true }
              gw: { forwarding: true }
              modem: {}
              server: { routes: [ { to: default, via: 10.0.9.1 } ] }
            bridges: { lan: { subnet: 10.0.4.0/24 } }
            links:
              - { endpoints: [router:wlan0, client:wlan0], subnet: 10.0.1.0/24 }
              - { endpoints: [router:lte0, client:lte0], subnet: 10.0.2.0/24 }
              - { endpoints: [modem:sat0, client:sat0], subnet: 10.0.3.0/24 }
              - { endpoints: [gw:lan0, lan] }
              - { endpoints: [client:lan0, lan] }
              - { endpoints: [router:eth0, server:eth0], subnet: 10.0.9.0/24 }
            """
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "threepaths.yaml")
        let routes = Planner.plan(t).hosts[0].operations.compactMap { op -> String? in
            guard case let .addRoute(ns, r) = op, ns == t.namespace(of: "client"), r.table != nil, r.destination == nil else { return nil }
            return "\(r.via.map { "\($0)" } ?? "-") \(r.device ?? "-")"
        }
        #expect(routes == ["10.0.1.1 wlan0", "10.0.2.1 lte0", "10.0.4.1 lan0"], "the file's default, then the links' routers; none through the modem")
        #expect(PlanText.render(Planner.plan(t), topology: t).contains("lte0's table routes beyond its subnet through 10.0.2.1"))
    }

    /// Source-routing tables never take the kernel's own (253 default, 254 main, 255 local), and
    /// a route copied into one keeps its metric (two defaults on one interface differ by it).
    @Test func sourceRoutingTablesSkipTheKernelsAndKeepMetrics() throws {
        var yaml = "name: many\nnodes:\n  client:\n    mptcp: { endpoints: { e0: subflow } }\n"
        yaml += "    routes: [ { to: default, via: 10.1.0.1 }, { to: default, via: 10.1.0.3, metric: 100 } ]\n"
        yaml += "  router: { forwarding: true }\n  other: { forwarding: true }\nbridges: { b0: { subnet: 10.1.0.0/24 } }\nlinks:\n"
        yaml += "  - { endpoints: [router:b0, b0] }\n  - { endpoints: [client:e0, b0] }\n  - { endpoints: [other:b0, b0] }\n"
        for i in 1..<160 { yaml += "  - { endpoints: [router:r\(i), client:e\(i)], subnet: 10.3.\(i).0/30 }\n" }
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "many.yaml")
        var tables: Set<UInt32> = [], copied: [RouteSpec] = []
        for case let .addRoute(ns, r) in Planner.plan(t).hosts[0].operations where ns == t.namespace(of: "client") {
            if let table = r.table { tables.insert(table) }
            if r.table == 100, r.destination == nil { copied.append(r) }
        }
        #expect(tables.count == 160 && tables.isDisjoint(with: [253, 254, 255]) && tables.max() == 262)
        #expect(copied.map(\.metric) == [nil, 100], "\(copied)")
    }

    @Test func oneWayProfileShapesOneEnd() throws {
        let yaml = """
            name: oneway
            profiles: { up: { rate: 1mbit, direction: reverse } }
            nodes: { a: {}, b: {} }
            links: [ { endpoints: [a:eth0, b:eth0], profile: up } ]
            """
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "oneway.yaml")
        let qdiscs = Planner.plan(t).hosts[0].operations.compactMap { op -> String? in
            if case let .setQdisc(r, _) = op { return r.namespace } else { return nil }
        }
        #expect(qdiscs == ["pb.oneway.b"])
    }

    /// Bridges joined by plain links are one kernel bridge; a link with a profile, a fault,
    /// `merge: false` or an STP bridge keeps its veth pair and its two bridges.
    @Test func plainLinksBetweenBridgesMakeOneKernelBridge() throws {
        let yaml = """
            name: merge
            profiles: { slow: { rate: 10mbit } }
            nodes: { a: {}, b: {}, c: {}, d: {} }
            bridges: { s1: {}, s2: {}, s3: {}, s4: {}, s5: {}, s6: {}, s7: { stp: true }, s8: {}, s9: {} }
            links:
              - { endpoints: [s2, s1] }
              - { endpoints: [s2, s3], profile: slow }
              - { endpoints: [s3, s4] }
              - { endpoints: [s4, s5], merge: false }
              - { endpoints: [s5, s6] }
              - { endpoints: [s6, s7] }
              - { endpoints: [s8, s9], name: faulted }
              - { endpoints: [s6, s4] }
              - { endpoints: [a:eth0, s2], subnet: 10.0.1.0/24 }
              - { endpoints: [b:eth0, s6] }
              - { endpoints: [c:eth0, s8], subnet: 10.0.4.0/24 }
              - { endpoints: [d:eth0, s9] }
            run: { duration: 5s }
            schedule: [ { at: 1s, fault: link-down, link: faulted, for: 1s } ]
            """
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "merge.yaml")
        let merged = Planner.kernelBridges(t)
        // s1+s2 (named s1, first in the file); s3+s4+s5+s6 through s6-s4, although s4-s5 says merge: false.
        #expect(merged.bridgeOf == ["s2": "s1", "s4": "s3", "s5": "s3", "s6": "s3"])
        #expect(merged.links == [0, 2, 4, 7], "s4-s5 is merged through s6 anyway, but as a link it is made: \(merged.links)")
        let ops = Planner.plan(t).hosts[0].operations
        let bridges = ops.compactMap { op -> String? in if case let .createBridge(r, _, _) = op { return r.name } else { return nil } }
        #expect(bridges == ["s1", "s3", "s7", "s8", "s9"])
        let veths = ops.compactMap { op -> String? in if case let .createVeth(a, b, _, _) = op { return "\(a.name)-\(b.name)" } else { return nil } }
        #expect(veths.contains("s2.s3-s3.s2") && veths.contains("s4.s5-s5.s4") && veths.contains("s6.s7-s7.s6") && veths.contains("s8.s9-s9.s8"))
        #expect(!veths.contains("s2.s1-s1.s2") && !veths.contains("s3.s4-s4.s3") && !veths.contains("s6.s4-s4.s6"))
        let masters = Dictionary(ops.compactMap { op -> (String, String)? in if case let .enslave(r, b) = op { return (r.name, b) } else { return nil } },
                                 uniquingKeysWith: { a, _ in a })
        #expect(masters["a.eth0"] == "s1" && masters["s2.s3"] == "s1" && masters["s3.s2"] == "s3" && masters["b.eth0"] == "s3")
        #expect(masters["s4.s5"] == "s3" && masters["s5.s4"] == "s3", "merge: false keeps the veth pair even when both ends join one bridge")
        #expect(masters["s6.s7"] == "s3" && masters["s7.s6"] == "s7")
        let ups = Set(ops.compactMap { op -> String? in if case let .setUp(r) = op, r.namespace == "pb.merge" { return r.name } else { return nil } })
        #expect(!ups.contains("s2") && !ups.contains("s4") && ups.contains("s1") && ups.contains("s3"))
    }

    @Test func jsonPlanRoundTrips() throws {
        let plan = Planner.plan(try topology("thesis-two-vms.yaml"))
        let data = try JSONEncoder().encode(plan)
        let back = try JSONDecoder().decode(LabPlan.self, from: data)
        #expect(back.hosts.map(\.operations) == plan.hosts.map(\.operations))
    }

    /// Plans and journals carry a qdisc flat, as they always have: a journal of the last release
    /// reads back, and `plan --json` keeps its keys.
    @Test func aQdiscCrossesJSONFlatAndAsItWas() throws {
        var lte = LinkProfile(name: "lte", location: SourceLocation(file: "", line: 0, column: 0))
        lte.rate = try Bitrate.parse("10mbit").get()
        lte.delay = try Duration.parse("50ms").get()
        let q = try #require(QueueSizing.qdisc(for: lte, mtu: 1500))
        let e = JSONEncoder(); e.outputFormatting = .sortedKeys
        let text = String(decoding: try e.encode(q), as: UTF8.self)
        #expect(text.hasPrefix(#"{"burstBytes":10000,"netem":{"delayMicroseconds":50000,"jitterMicroseconds":0,"limitPackets":125},"profile":"lte","rateBitsPerSecond":10000000}"#), "\(text)")
        #expect(try JSONDecoder().decode(QdiscSpec.self, from: Data(text.utf8)) == q)
        let older = #"{"profile":"p","rateBitsPerSecond":20000000,"burstBytes":20000,"limitBytes":60000}"#
        #expect(try JSONDecoder().decode(QdiscSpec.self, from: Data(older.utf8)).shaping == .tbf(rateBytes: 2_500_000, burstBytes: 20000, limitBytes: 60000))
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(QdiscSpec.self, from: Data(#"{"profile":"p"}"#.utf8)) }
    }

    @Test func aPlainHostGetsMPTCPOffInItsNamespaces() throws {
        let plan = Planner.plan(try topology("thesis-two-vms.yaml"))
        let plain = try #require(plan.hosts.first { $0.host == "plain-vm" })
        #expect(plain.operations.contains(.disableMPTCP(namespace: "pb.thesis.server")))
        #expect(!plan.hosts[0].operations.contains { if case .disableMPTCP = $0 { return true } else { return false } })
    }

    @Test func probesStandInForBridgeEndsWithANodeOnTheSameHost() throws {
        let probes = TunnelProbe.plan(try topology("thesis-two-vms.yaml"))
        #expect(probes.count == 2)
        #expect(Set(probes.map(\.fromNamespace)) == ["pb.thesis.server", "pb.thesis.router"])
        #expect(probes.allSatisfy { $0.payload == 1472 })
    }

    /// Faults find what to put back from the plan itself: the routes through a link end, and
    /// its MPTCP endpoints.
    @Test func thePlanSaysWhatALinkEndCarries() throws {
        let t = try topology("two-paths.yaml")
        let plan = Planner.plan(t)
        let eth2 = InterfaceRef(namespace: t.namespace(of: "client"), name: "eth2")
        #expect(plan.endpoints(on: eth2, host: "local").map(\.address.description) == ["10.0.2.2"])
        let routes = plan.routes(through: eth2, host: "local")
        #expect(routes.contains { $0.table == 101 && $0.destination == nil && $0.via?.description == "10.0.2.1" }, "\(routes)")
        #expect(!routes.contains { $0.via?.description == "10.0.1.1" })
    }
}
