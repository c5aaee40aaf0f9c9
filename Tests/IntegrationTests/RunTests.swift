import Foundation
import Testing

/// `pathbed run` for real on this machine: topologies/two-paths.yaml, an MPTCP upload and pings,
/// path 2 down from 7 s to 12 s.
/// Waits (at most 30 s) until a file a spawned command writes contains `text`.
func waitFor(_ text: String, in path: String) {
    var waited = 0
    while waited < 300, !((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").contains(text) { usleep(100_000); waited += 1 }
}

extension LabTests {
    func runDirectory(_ parent: String) throws -> String {
        let dirs = try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix("two-paths-") }
        return parent + "/" + (try #require(dirs.sorted().last))
    }

    @Test func aRunTakesAPathDownMeasuresItAndPutsItBack() throws {
        let before = try hostSnapshot()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("pb-runs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out); _ = try? pb("down", "two-paths") }
        let r = try run([pathbed, "run", twoPaths, "--out", out], timeout: 120)
        #expect(r.status == 0, "\(r.out) \(r.err.suffix(1500))")
        #expect(r.err.contains("link-down path2: injected") && r.err.contains("link-down path2: reverted"), "\(r.err)")
        let dir = try runDirectory(out)
        for f in ["results.json", "series.csv", "workloads.svg", "interfaces.svg", "rtt.svg", "summary.txt"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(f)"), "\(f) written")
        }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/results.json"))) as? [String: Any])
        #expect(json["format"] as? String == "pathbed-results" && json["version"] as? Int == 1)
        // The pre-flight measured every link between two nodes (3 of them: RTT, loss, goodput each way).
        let calibration = try #require(json["calibration"] as? [[String: Any]])
        // Measured while the rest of the suite loads the machine: one figure of 12 outside its tolerance
        // was seen once in a full fresh-clone suite; it is printed, and a second fails the test.
        let outside = calibration.filter { $0["verdict"] as? String != "ok" }
        if !outside.isEmpty { print("run test: link figures outside tolerance: \(outside)") }
        #expect(calibration.count == 12 && outside.count <= 1, "\(calibration)")
        #expect(r.err.contains("links verified in") && (r.err.contains("all within tolerance") || outside.count == 1), "\(r.err)")
        // The run's health, read on this machine with the counters.
        let health = try #require(json["health"] as? [String: Any])
        let here = try #require((health["hosts"] as? [[String: Any]])?.first)
        #expect(["valid", "suspect"].contains(health["verdict"] as? String ?? "") && (here["seconds"] as? Double ?? 0) > 10 && (here["cpus"] as? Int ?? 0) >= 1, "\(health)")
        #expect((health["queues"] as? [[String: Any]] ?? []).contains { $0["end"] as? String == "router:eth2" && ($0["kind"] as? String) == "tbf" }, "\(health)")
        let events = try #require(json["events"] as? [[String: Any]])
        #expect(events.count == 1)
        let down = events[0]["actual"] as? Double ?? -1, up = events[0]["revertActual"] as? Double ?? -1
        // 0.5 s: in one full fresh-clone suite the revert began more than 0.2 s late (how late was not
        // kept: it is printed now); alone it is within 3 ms (schedule timing in the summary).
        print("run test: link-down applied at \(down) s (planned 7), reverted at \(up) s (planned 12)")
        #expect(abs(down - 7) < 0.5 && abs(up - 12) < 0.5, "played on time: \(down) \(up)")
        // Path use from the counters: path 2 carried the upload before and nothing while down.
        let interfaces = try #require(json["interfaces"] as? [[String: Any]])
        let path2 = try #require(interfaces.first { $0["name"] as? String == "router:eth2 rx" })
        let times = path2["times"] as? [Double] ?? [], values = path2["values"] as? [Double] ?? []
        func mean(_ a: Double, _ b: Double) -> Double {
            let v = zip(times, values).filter { $0.0 >= a && $0.0 < b }.map(\.1)
            return v.isEmpty ? -1 : v.reduce(0, +) / Double(v.count)
        }
        // When it did not (once in a CI run under load), what MPTCP did says why: a fallback of the
        // data connection, or a subflow that came late.
        let why = { () -> String in
            let counters = (json["mptcpCounters"] as? [String: [String: Int]])?["client"]?.filter { $0.key.contains("Fallback") || $0.key.contains("MPCapable") || $0.key.contains("MPJoin") } ?? [:]
            let subflows = (json["mptcpEvents"] as? [[String: Any]] ?? []).filter { ($0["type"] as? String)?.hasPrefix("SF_") == true || $0["type"] as? String == "CREATED" }
                .map { "\($0["node"] ?? "") \($0["type"] ?? "") t=\($0["t"] ?? "") \($0["detail"] ?? "")" }
            return "client counters \(counters.sorted { $0.key < $1.key }); events \(subflows.prefix(12))"
        }
        #expect(mean(2, 7) > 5, "path 2 carried MPTCP traffic before the fault: \(mean(2, 7)); \(why())")
        #expect(mean(7.3, 11.9) >= 0 && mean(7.3, 11.9) < 0.2, "and nothing while it was down: \(mean(7.3, 11.9))")
        let impacts = try #require(json["impacts"] as? [[String: Any]])
        let impact = try #require(impacts.first?["impact"] as? [String: Any])
        let b = impact["before"] as? Double ?? 0, d = impact["during"] as? Double ?? 99
        #expect(b > 15 && d < 11, "MPTCP over both paths, then one path: \(b) -> \(d)")
        #expect(try String(contentsOfFile: "\(dir)/summary.txt", encoding: .utf8).contains("recovery"))
        // MPTCP as the kernel saw it: the second subflow joined (counters), and the monitor said so.
        let counters = json["mptcpCounters"] as? [String: [String: Int]] ?? [:]
        #expect((counters["client"]?["MPJoinSynTx"] ?? 0) >= 1 && (counters["server"]?["MPJoinSynRx"] ?? 0) >= 1, "\(counters)")
        let mptcpEvents = json["mptcpEvents"] as? [[String: Any]] ?? []
        #expect(mptcpEvents.contains { $0["type"] as? String == "SF_ESTABLISHED" && $0["node"] as? String == "client" }, "\(mptcpEvents.prefix(5))")
        // Per subflow, from the sockets: the bulk upload's client side had a subflow on each path,
        // each carried data before the fault, and path 2's carried nothing while it was down.
        let subflows = (json["subflows"] as? [[String: Any]] ?? []).filter { $0["workload"] as? String == "bulk" && $0["side"] as? String == "client" }
        func carried(_ sf: [String: Any], _ a: Double, _ b: Double, _ key: String = "bytesAcked") -> Double {
            let t = sf["times"] as? [Double] ?? [], acked = (sf[key] as? [NSNumber] ?? []).map(\.doubleValue)
            let inside = zip(t, acked).filter { $0.0 >= a && $0.0 < b }.map(\.1)
            return (inside.last ?? 0) - (inside.first ?? 0)
        }
        for path in ["client:eth1", "client:eth2"] {
            let mine = subflows.filter { $0["path"] as? String == path }
            #expect(mine.contains { carried($0, 2, 7) > 1_000_000 }, "a subflow on \(path) carried over 1 MB in 2-7 s: \(mine.map { ($0["local"] ?? "", carried($0, 2, 7)) })")
            if path == "client:eth2" { #expect(mine.allSatisfy { carried($0, 7.5, 11.9) < 50_000 }, "none on path 2 while it was down") }
        }
        // The connection above them (MPTCP_INFO): its token is its subflows', it had two, and its
        // data sent is what its subflows carried, less their retransmissions (never more).
        let connections = (json["connections"] as? [[String: Any]] ?? []).filter { $0["workload"] as? String == "bulk" && $0["side"] as? String == "client" }
        let upload = try #require(connections.max { carried($0, 0, 99, "dataAcked") < carried($1, 0, 99, "dataAcked") }, "\(connections)")
        let data = carried(upload, 0, 99, "dataAcked")
        let onSubflows = subflows.filter { $0["token"] as? String == upload["token"] as? String }.map { carried($0, 0, 99) }.reduce(0, +)
        #expect(data > 10_000_000 && onSubflows >= data * 0.999 && onSubflows < data * 1.5, "data \(data) B, its subflows \(onSubflows) B")
        #expect((upload["subflows"] as? [Int] ?? []).max() == 2, "two subflows at once: \(upload["subflows"] ?? "")")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/subflows.svg") && FileManager.default.fileExists(atPath: "\(dir)/tidy.csv"))
        // `pathbed report` renders it again from results.json alone.
        try FileManager.default.removeItem(atPath: "\(dir)/workloads.svg")
        #expect(try pb("report", dir).status == 0 && FileManager.default.fileExists(atPath: "\(dir)/workloads.svg"))
        #expect(try hostSnapshot() == before, "the run removed its lab")
    }

    @Test func ctrlCDuringAFaultRevertsItAndRemovesTheLab() throws {
        let before = try hostSnapshot()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("pb-runs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out); _ = try? pb("down", "two-paths") }
        let errPath = out + ".err"
        defer { unlink(errPath) }
        let pid = try spawn([pathbed, "run", "--no-verify", twoPaths, "--out", out], stderr: errPath)
        waitFor("path2: injected", in: errPath)
        let linkState = try run(["ip", "-n", "pb.two-paths.client", "-o", "link", "show", "eth2"]).out
        #expect(!linkState.contains(",UP"), "the fault is in effect: \(linkState)")
        kill(pid, SIGINT)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        #expect((status >> 8) & 0xff == 1 && err.contains("interrupted"), "\(err.suffix(500))")
        #expect(try hostSnapshot() == before, "nothing is left")
    }
}

extension LabTests {
    /// A fault on a host reached through its agent outlives neither the run nor the run's
    /// controller: killed with SIGKILL mid-fault, the agent sees its controller go and brings
    /// the link back up (with its routes).
    @Test func anAgentRevertsItsFaultsWhenItsControllerIsKilled() throws {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pb-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        defer { _ = try? pb("down", "agt"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("agt.yaml").path, inv = d.appendingPathComponent("inv.json").path
        try """
            name: agt
            hosts: { here: {}, there: { ssh: nobody@remote.invalid } }
            nodes:
              a1: { host: here }
              b1: { host: there, routes: [ { to: 10.77.9.0/24, via: 10.77.2.2 } ] }
              b2: { host: there }
            links:
              - { name: lonely, endpoints: [a1:eth0, a1:eth1], subnet: 10.77.1.0/30 }
              - { name: l2, endpoints: [b1:eth0, b2:eth0], subnet: 10.77.2.0/30 }
            workloads:
              - { name: rtt, plugin: ping, client: b1, server: b2, duration: 30s }
            schedule:
              - { at: 2s, fault: link-down, link: l2, for: 20s }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        try #"{"hosts": {"there": {"command": ["\#(pathbed)", "agent"]}}}"#.write(toFile: inv, atomically: true, encoding: .utf8)
        let errPath = d.appendingPathComponent("err").path
        let pid = try spawn([pathbed, "run", "--no-verify", file, "--inventory", inv, "--out", d.path], stderr: errPath)
        waitFor("l2: injected", in: errPath)
        var waited = 0
        func state() throws -> String { try run(["ip", "-n", "pb.agt.b1", "-o", "link", "show", "eth0"]).out }
        #expect(!(try state()).contains(",UP"), "the fault is in effect")
        #expect(!(try run(["ip", "-n", "pb.agt.b1", "route"]).out.contains("10.77.9.0/24")), "its route went with the link")
        kill(pid, SIGKILL)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
        waited = 0
        while waited < 50, !(try state()).contains(",UP") { usleep(100_000); waited += 1 }
        #expect(try state().contains(",UP"), "the agent brought the link back, 18 s before the fault's end")
        #expect(try run(["ip", "-n", "pb.agt.b1", "route"]).out.contains("10.77.9.0/24 via 10.77.2.2"), "with its route")
    }
}

extension LabTests {
    /// A run killed with SIGKILL mid-fault on this machine leaves its link down, and says so in
    /// the journal: the next `up` brings it back with its routes.
    @Test func theNextUpUndoesTheFaultOfAKilledRun() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("pb-runs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out); _ = try? pb("down", "two-paths") }
        let errPath = out + ".err"
        defer { unlink(errPath) }
        let pid = try spawn([pathbed, "run", "--no-verify", twoPaths, "--out", out], stderr: errPath)
        waitFor("path2: injected", in: errPath)
        kill(pid, SIGKILL)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
        #expect(try run(["pgrep", "-f", "iperf3 -s -p 5201"]).status == 0, "the killed run's server is still in the lab")
        func eth2() throws -> String { try run(["ip", "-n", "pb.two-paths.client", "-o", "link", "show", "eth2"]).out }
        func table() throws -> String { try run(["ip", "-n", "pb.two-paths.client", "route", "show", "table", "all"]).out }
        #expect(!(try eth2()).contains(",UP"), "the killed run left path 2 down")
        #expect(!(try table()).contains("default via 10.0.2.1"), "and its routes gone")
        let up = try pb("up", twoPaths)
        #expect(up.status == 0 && up.out.contains("was left by a run that did not finish"), "\(up.out) \(up.err)")
        let serverLeft = try run(["pgrep", "-f", "iperf3 -s -p 5201"]).status == 0
        #expect(up.out.contains("processes a run") && !serverLeft, "what it left running was stopped: \(up.out)")
        #expect(try eth2().contains(",UP"))
        let routes = try table()
        #expect(routes.contains("default via 10.0.2.1"), "the routes through it are back: \(routes)")
        #expect(try pb("up", twoPaths).out.contains("nothing to change"), "and the journal forgot the fault")
    }
}
