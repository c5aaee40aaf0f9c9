import Foundation
import Testing

/// topologies/two-paths-faults.yaml for real: every built-in workload and fault, and the two
/// example external plugins in Python (plugins/tcp_rr.py, plugins/endpoint_flap.py).
extension LabTests {
    @Test func everyWorkloadAndFaultKindPlaysOnARealLab() throws {
        let before = try hostSnapshot()
        let file = root.appendingPathComponent("topologies/two-paths-faults.yaml").path
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("pb-runs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out); _ = try? pb("down", "two-paths-faults") }
        let r = try run([pathbed, "run", "--no-verify", file, "--out", out, "--capture", "path1,path2"], timeout: 150)
        #expect(r.status == 0, "\(r.out.suffix(1500)) \(r.err.suffix(2500))")
        let dirs = try FileManager.default.contentsOfDirectory(atPath: out)
        let dir = out + "/" + (try #require(dirs.first { $0.hasPrefix("two-paths-faults-") }))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/results.json"))) as? [String: Any])

        // The capture: one pcapng with both links' interfaces named, that tshark reads; MPTCP in it.
        let captures = json["captures"] as? [[String: Any]] ?? []
        #expect(captures.count == 2 && captures.allSatisfy { ($0["packets"] as? Int ?? 0) > 1000 }, "\(captures)")
        let names = try run(["tshark", "-r", "\(dir)/capture.pcapng", "-T", "fields", "-e", "frame.interface_name"], timeout: 120).out
        #expect(names.contains("(link path1)") && names.contains("(link path2)"), "\(names.prefix(300))")
        let inCapture = json["captureSummary"] as? [String: Any] ?? [:]
        let perOption = inCapture["options"] as? [String: Int] ?? [:]
        #expect((perOption["MP_CAPABLE"] ?? 0) >= 3 && (perOption["DSS"] ?? 0) > 1000 && (inCapture["joinSYNs"] as? Int ?? 0) >= 1, "\(inCapture)")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp"))?.filter { $0.hasPrefix("pathbed-capture") } ?? []
        #expect(leftovers.isEmpty, "each host's capture directory is removed: \(leftovers)")

        // The schedule, on time.
        let events = json["events"] as? [[String: Any]] ?? []
        #expect(events.map { $0["kind"] as? String ?? "" } == ["plugin", "profile", "trace", "partition"], "\(events)")
        for e in events {
            let planned = e["planned"] as? Double ?? -1, actual = e["actual"] as? Double ?? 99
            #expect(abs(actual - planned) < 0.1, "\(e["label"] ?? "") played at \(actual), planned \(planned)")
            #expect(e["revertActual"] as? Double != nil, "\(e["label"] ?? "") was reverted")
        }

        let workloads = json["workloads"] as? [[String: Any]] ?? []
        func workload(_ name: String) throws -> [String: Any] { try #require(workloads.first { $0["name"] as? String == name }) }
        func series(_ w: [String: Any], _ unit: String) -> [(Double, Double)] {
            let s = (w["series"] as? [[String: Any]] ?? []).first { $0["unit"] as? String == unit } ?? [:]
            return Array(zip(s["times"] as? [Double] ?? [], s["values"] as? [Double] ?? []))
        }
        // The external workload: both sides ran, it measured request/response latency.
        let rr = try workload("rr")
        #expect(rr["error"] == nil, "\(rr["error"] ?? "")")
        let rrMetrics = rr["metrics"] as? [String: Double] ?? [:]
        #expect((rrMetrics["transactions"] ?? 0) > 50 && (rrMetrics["p50 ms"] ?? 0) > 0, "\(rrMetrics)")
        #expect(series(rr, "ms").count > 50, "latency samples every 100 ms")
        // The built-ins.
        let get = try workload("get")
        #expect(get["error"] == nil && (get["metrics"] as? [String: Double])?["16000 B median s"] != nil, "\(get)")
        let note = try workload("note")
        #expect((note["output"] as? String ?? "").contains("router up") && note["error"] == nil, "\(note)")

        // Path use from the counters, per fault.
        let interfaces = json["interfaces"] as? [[String: Any]] ?? []
        func mean(_ name: String, _ a: Double, _ b: Double) -> Double {
            let s = interfaces.first { $0["name"] as? String == name } ?? [:]
            let v = zip(s["times"] as? [Double] ?? [], s["values"] as? [Double] ?? []).filter { $0.0 >= a && $0.0 < b }.map(\.1)
            return v.isEmpty ? -1 : v.reduce(0, +) / Double(v.count)
        }
        // profile: path 1 at 2 Mbit/s from 6 to 8 s, changed in place.
        let p1 = mean("router:eth1 rx", 6.3, 7.9)
        #expect(p1 >= 0 && p1 < 2.4 && mean("router:eth1 rx", 1, 2.9) > 4, "path 1: \(mean("router:eth1 rx", 1, 2.9)) then \(p1)")
        // trace: path 2 at 1 Mbit/s from 11 to 12 s.
        let p2 = mean("router:eth2 rx", 11.2, 11.9)
        #expect(p2 >= 0 && p2 < 1.3, "path 2 under the trace's third row: \(p2)")
        // partition: no ping reply while the server is cut off.
        let pings = series(try workload("rtt"), "ms")
        #expect(!pings.contains { $0.0 > 14.15 && $0.0 < 14.85 } && pings.contains { $0.0 > 13 && $0.0 < 14 }, "pings around the partition")
        // The external fault: the endpoint's subflows closed, and new ones opened once it came back.
        let mptcp = (json["mptcpEvents"] as? [[String: Any]] ?? []).filter { $0["node"] as? String == "client" }
        let closed = mptcp.filter { $0["type"] as? String == "SF_CLOSED" }.compactMap { $0["t"] as? Double }
        let opened = mptcp.filter { $0["type"] as? String == "SF_ESTABLISHED" }.compactMap { $0["t"] as? Double }
        #expect(closed.contains { $0 >= 3 && $0 < 5 } && opened.contains { $0 >= 5 && $0 < 8 }, "closed \(closed), established \(opened)")

        // What the lab was measured on.
        let meta = json["metadataBefore"] as? [String: [String: Any]] ?? [:]
        let client = meta["pb.two-paths-faults.client"] ?? [:]
        #expect((client["qdiscs"] as? [String] ?? []).contains { $0.contains("tbf") }, "\(client)")
        #expect((client["sysctls"] as? [String: String])?["net.mptcp.enabled"] == "1", "\(client)")
        #expect(try hostSnapshot() == before, "the run removed its lab")
    }

    /// A plugin that never speaks the protocol fails the run with its name and its stderr, and
    /// leaves nothing; one that is not executable is refused before the lab is built.
    @Test func aBrokenPluginFailsClearlyAndLeavesNothing() throws {
        let before = try hostSnapshot()
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pb-plug-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        defer { _ = try? pb("down", "plug"); try? FileManager.default.removeItem(at: d) }
        let mute = d.appendingPathComponent("mute.sh").path
        try "#!/bin/sh\necho 'no protocol here' >&2\nsleep 60\n".write(toFile: mute, atomically: true, encoding: .utf8)
        chmod(mute, 0o755)
        try "not a program\n".write(toFile: d.appendingPathComponent("plain.txt").path, atomically: true, encoding: .utf8)
        func lab(_ plugin: String) throws -> String {
            let f = d.appendingPathComponent("plug.yaml").path
            try """
                name: plug
                nodes: { a: {}, b: {} }
                links: [ { endpoints: [a:eth0, b:eth0], subnet: 10.9.9.0/30 } ]
                workloads: [ { name: w, plugin: ./\(plugin), client: a, server: b, duration: 3s } ]
                """.write(toFile: f, atomically: true, encoding: .utf8)
            return f
        }
        let notExecutable = try run([pathbed, "run", "--no-verify", try lab("plain.txt"), "--out", d.path])
        #expect(notExecutable.status == 1 && notExecutable.err.contains("plain.txt is not executable") && notExecutable.err.contains("plug.yaml:4:"), "\(notExecutable.err)")
        #expect(!(try run(["ip", "netns", "list"]).out.contains("pb.plug")), "refused before anything was built")
        let t0 = Date()
        let silent = try run([pathbed, "run", "--no-verify", try lab("mute.sh"), "--out", d.path], timeout: 90)
        #expect(silent.status == 1 && silent.err.contains("did not say ready") && silent.err.contains("no protocol here"), "\(silent.err)")
        #expect(Date().timeIntervalSince(t0) < 40, "no hang")
        #expect(try hostSnapshot() == before, "nothing is left")
    }
}

extension LabTests {
    /// The management path cut mid-fault (the controller stopped: no end of file, no more
    /// heartbeats): the agent takes its controller for gone and brings the link back.
    @Test func anAgentRevertsItsFaultsWhenTheManagementPathIsCut() throws {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pb-cut-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        defer { _ = try? pb("down", "cut"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("cut.yaml").path, inv = d.appendingPathComponent("inv.json").path
        try """
            name: cut
            hosts: { here: {}, there: { ssh: nobody@remote.invalid } }
            nodes:
              a1: { host: here }
              b1: { host: there }
              b2: { host: there }
            links:
              - { name: lonely, endpoints: [a1:eth0, a1:eth1], subnet: 10.78.1.0/30 }
              - { name: l2, endpoints: [b1:eth0, b2:eth0], subnet: 10.78.2.0/30 }
            workloads:
              - { name: rtt, plugin: ping, client: b1, server: b2, duration: 40s }
            schedule:
              - { at: 2s, fault: link-down, link: l2, for: 30s }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        try #"{"hosts": {"there": {"command": ["\#(pathbed)", "agent"]}}}"#.write(toFile: inv, atomically: true, encoding: .utf8)
        let errPath = d.appendingPathComponent("err").path
        let pid = try spawn([pathbed, "run", "--no-verify", file, "--inventory", inv, "--out", d.path], stderr: errPath)
        defer { kill(pid, SIGCONT); kill(pid, SIGKILL); var st: Int32 = 0; waitpid(pid, &st, 0) }
        waitFor("l2: injected", in: errPath)
        func state() throws -> String { try run(["ip", "-n", "pb.cut.b1", "-o", "link", "show", "eth0"]).out }
        #expect(!(try state()).contains(",UP"), "the fault is in effect")
        kill(pid, SIGSTOP)
        let stopped = Date()
        var waited = 0
        while waited < 150, !(try state()).contains(",UP") { usleep(100_000); waited += 1 }
        let after = Date().timeIntervalSince(stopped)
        #expect(try state().contains(",UP"), "the agent brought the link back, long before the fault's end")
        #expect(after < 12, "within the heartbeat limit (6 s) and a little: \(after) s")
    }
}
