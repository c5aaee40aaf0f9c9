import Foundation
import Planning
import Testing

/// What an adversary and new users did to runs and labs, each on a real lab: a running lab
/// changed in place, a line past the bridge's port limit, a run whose program escapes its
/// process group, a run stopped by SIGTERM, a lab two commands want at once, faults that
/// overlap, an agent killed mid-fault.
extension LabTests {
    func scratchDirectory() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pb-hard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    @Test func routesOfARunningLabChangeInPlaceAndTrafficGoesOn() throws {
        let before = try hostSnapshot()
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "two-paths"); try? FileManager.default.removeItem(at: d) }
        try #require(try pb("up", twoPaths).status == 0)
        let base = try String(contentsOfFile: twoPaths, encoding: .utf8)
        let changed = d.appendingPathComponent("two-paths.yaml").path
        try base.replacingOccurrences(of: "      - { to: default, via: 10.0.2.1, metric: 100 }",
                                      with: "      - { to: default, via: 10.0.2.1, metric: 100 }\n      - { to: 192.0.2.0/24, via: 10.0.1.1 }\n      - { to: 198.51.100.0/24, via: 10.0.2.1 }")
            .write(toFile: changed, atomically: true, encoding: .utf8)
        for _ in 0..<2 {  // and back again
            let up = try pb("up", changed)
            #expect(up.status == 0 && up.out.contains("in place") && !up.out.contains("rebuild"), "\(up.out) \(up.err)")
            let routes = try run(["ip", "-n", "pb.two-paths.client", "route"]).out
            #expect(routes.contains("192.0.2.0/24 via 10.0.1.1") && routes.contains("198.51.100.0/24 via 10.0.2.1"), "\(routes)")
            #expect(try run(["ip", "netns", "exec", "pb.two-paths.client", "ping", "-c", "1", "-W", "2", "10.0.3.2"]).status == 0)
            let back = try pb("up", twoPaths)
            let after = try run(["ip", "-n", "pb.two-paths.client", "route"]).out
            #expect(back.status == 0 && !after.contains("192.0.2.0/24"), "\(back.out) \(back.err)")
        }
        let status = try pb("status", "two-paths").out
        #expect(status.contains("two-paths: up"), "\(status)")
        _ = try pb("down", "two-paths")
        #expect(try hostSnapshot() == before)
    }

    @Test func aLinePastABridgesPortLimitComesUpAndGoesDown() throws {
        let before = try hostSnapshot()
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "linear1100"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("l.yaml").path
        try #require(try pb("generate", "linear", "1100", "-o", file).status == 0)
        let up = try run([pathbed, "up", file], timeout: 180)
        #expect(up.status == 0, "\(up.out) \(up.err)")
        let bridges = try run(["ip", "-n", "pb.linear1100", "-o", "link", "show", "type", "bridge"]).out.split(separator: "\n")
        #expect(bridges.count == 5, "five kernel bridges, none past \(Planner.mergedBridgePorts) ports: \(bridges.count)")
        for b in bridges.compactMap({ $0.split(separator: ":").dropFirst().first?.trimmingCharacters(in: .whitespaces) }) {
            let ports = try run(["ip", "-n", "pb.linear1100", "-o", "link", "show", "master", b]).out.split(separator: "\n").count
            #expect(ports <= Planner.mergedBridgePorts, "bridge \(b) has \(ports) ports")
        }
        // Across every bridge: the ARP request must survive four floods on the way.
        #expect(try run(["ip", "netns", "exec", "pb.linear1100.h1", "ping", "-c", "1", "-W", "3", "10.0.4.76"]).status == 0, "h1 reaches h1100 across all five")
        #expect(try run([pathbed, "down", "linear1100"], timeout: 120).status == 0)
        #expect(try hostSnapshot() == before)
    }

    @Test func aRunEndsOnTimeWhateverItsProgramsDoAndSaysWhatFailed() throws {
        let before = try hostSnapshot()
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "hard"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("hard.yaml").path
        try """
            name: hard
            nodes: { a: {}, b: {} }
            links: [ { endpoints: [a:eth0, b:eth0], subnet: 10.9.8.0/30 } ]
            workloads:
              - { name: escape, plugin: command, node: a, duration: 3s, with: { command: "setsid sleep 10000 & echo started; wait" } }
              - { name: fails, plugin: command, node: b, duration: 3s, with: { command: "exit 3" } }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let t0 = Date()
        let r = try run([pathbed, "run", "--no-verify", file, "--out", d.path], timeout: 90)
        #expect(Date().timeIntervalSince(t0) < 45, "a 3 s run ended in \(Date().timeIntervalSince(t0)) s")
        #expect(r.status == 1 && r.err.contains("workload fails failed: exit 3") && r.out.contains("PROBLEMS"), "\(r.out.suffix(800)) \(r.err.suffix(800))")
        #expect(try run(["pgrep", "-f", "sleep 10000"]).status != 0, "the program that left its group is gone")
        #expect(try hostSnapshot() == before, "nothing is left")
    }

    @Test func aRunStoppedBySIGTERMWritesWhatItMeasured() throws {
        let before = try hostSnapshot()
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "two-paths"); try? FileManager.default.removeItem(at: d) }
        let errPath = d.appendingPathComponent("err").path
        let pid = try spawn([pathbed, "run", "--no-verify", twoPaths, "--out", d.path], stderr: errPath)
        waitFor("path2: injected", in: errPath)
        // Meanwhile the lab is the run's: neither `down` nor a second run may take it.
        let down = try pb("down", "two-paths")
        #expect(down.status == 1 && down.err.contains("a run of lab 'two-paths' is in progress"), "\(down.err)")
        let second = try run([pathbed, "run", "--no-verify", twoPaths, "--out", d.path + "/second"], timeout: 60)
        #expect(second.status == 1 && second.err.contains("in progress"), "\(second.err)")
        // `up` of the same file changes nothing, and above all does not undo the run's fault.
        let again = try pb("up", twoPaths)
        #expect(again.status == 0 && !again.out.contains("undone"), "\(again.out) \(again.err)")
        let path2 = try run(["ip", "-n", "pb.two-paths.client", "-o", "link", "show", "eth2"]).out
        #expect(!path2.contains(",UP"), "path2 is still down, as the run's fault has it: \(path2)")
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        #expect((status >> 8) & 0xff == 1 && err.contains("what was measured until then"), "\(err.suffix(600))")
        let runDir = d.path + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: d.path).first { $0.hasPrefix("two-paths-") }))
        let results = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runDir + "/results.json"))) as? [String: Any])
        #expect((results["endedEarly"] as? String)?.contains("signal 15") == true, "\(results["endedEarly"] ?? "none")")
        let series = ((results["workloads"] as? [[String: Any]])?.first?["series"] as? [[String: Any]])?.first?["values"] as? [Double] ?? []
        #expect(series.count > 20, "the throughput until the signal is there: \(series.count) samples")
        // The results tell the run as it happened: how long it lasted, the fault undone at the
        // end, the workloads stopped by it (not failed on their own), the pings it sent.
        let lasted = results["durationSeconds"] as? Double ?? 0
        #expect(lasted > 7 && lasted < 15, "it lasted until the signal, not its planned 20 s: \(lasted)")
        let event = (results["events"] as? [[String: Any]])?.first { $0["label"] as? String == "link-down path2" }
        let revert = event?["revertActual"] as? Double
        #expect(revert != nil && revert! <= lasted + 1, "the fault in force was undone and that is recorded: \(String(describing: event))")
        for w in results["workloads"] as? [[String: Any]] ?? [] where (w["exitCode"] as? Int ?? 0) != 0 {
            #expect((w["error"] as? String)?.contains("when the run ended early") == true, "\(w["name"] ?? ""): \(w["error"] ?? "no error")")
        }
        let ping = (results["workloads"] as? [[String: Any]])?.first { $0["plugin"] as? String == "ping" }
        let metrics = ping?["metrics"] as? [String: Double] ?? [:]
        #expect((metrics["sent (planned)"] ?? 0) <= lasted / 0.2 + 1, "pings sent as planned until the signal: \(metrics)")
        #expect(try hostSnapshot() == before, "every fault reverted, the lab removed")
    }

    @Test func faultsThatOverlapOnANodeComposeAndAllComeBack() throws {
        let before = try hostSnapshot()
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "two-paths"); try? FileManager.default.removeItem(at: d) }
        let base = try String(contentsOfFile: twoPaths, encoding: .utf8)
            .replacingOccurrences(of: "profiles:\n  path: { rate: 10mbit }\n  backbone: { rate: 100mbit }\n", with: "")
        let file = d.appendingPathComponent("two-paths.yaml").path
        let head = String(base[..<(try #require(base.range(of: "\nlinks:")).lowerBound)])
        try (head + """

            links:
              - { name: path1, endpoints: [router:eth1, client:eth1], profile: path, subnet: 10.0.1.0/24 }
              - { name: path2, endpoints: [router:eth2, client:eth2], profile: path, subnet: 10.0.2.0/24 }
              - { name: backbone, endpoints: [router:eth3, server:eth0], profile: backbone, subnet: 10.0.3.0/24 }
            profiles:
              path: { rate: 10mbit }
              backbone: { rate: 100mbit }
              huge: { rate: 20gbit }
            run: { duration: 9s }
            schedule:
              - { at: 1s, fault: partition, nodes: [client], for: 4s }
              - { at: 2s, fault: link-down, link: path1, for: 1s }
              - { at: 2s, fault: link-down, link: path2, for: 5s }
              - { at: 3s, fault: link-down, link: path2, for: 2s }
              - { at: 1s, fault: profile, link: backbone, profile: huge, for: 3s }
            """)
            .write(toFile: file, atomically: true, encoding: .utf8)
        let r = try run([pathbed, "run", "--no-verify", file, "--out", d.path, "--keep"], timeout: 120)
        #expect(r.status == 0, "\(r.out.suffix(600)) \(r.err.suffix(1200))")
        let routes = try run(["ip", "-n", "pb.two-paths.client", "route", "show", "table", "all"]).out
        #expect(routes.contains("default via 10.0.1.1") && routes.contains("default via 10.0.2.1"), "every route back: \(routes)")
        let rules = try run(["ip", "-n", "pb.two-paths.client", "rule"]).out
        #expect(!rules.contains("blackhole"), "every blackhole rule lifted: \(rules)")
        let qdisc = try run(["tc", "-n", "pb.two-paths.router", "qdisc", "show", "dev", "eth3"]).out
        #expect(qdisc.contains("tbf"), "the backbone is tbf again after htb: \(qdisc)")
        _ = try pb("down", "two-paths")
        #expect(try hostSnapshot() == before)
    }

    @Test func aFaultOutlivesNoAgentEvenOneKilledWithSIGKILL() throws {
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "agk"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("agk.yaml").path, inv = d.appendingPathComponent("inv.json").path
        try """
            name: agk
            hosts: { here: {}, there: { ssh: nobody@remote.invalid } }
            nodes: { a1: { host: here }, b1: { host: there }, b2: { host: there } }
            links:
              - { name: lonely, endpoints: [a1:eth0, a1:eth1], subnet: 10.77.1.0/30 }
              - { name: l2, endpoints: [b1:eth0, b2:eth0], subnet: 10.77.2.0/30 }
            run: { duration: 30s }
            schedule:
              - { at: 1s, fault: link-down, link: l2, for: 2s }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        try #"{"hosts": {"there": {"command": ["\#(pathbed)", "agent"]}}}"#.write(toFile: inv, atomically: true, encoding: .utf8)
        let errPath = d.appendingPathComponent("err").path
        let pid = try spawn([pathbed, "run", "--no-verify", file, "--inventory", inv, "--out", d.path], stderr: errPath)
        waitFor("l2: injected", in: errPath)
        func state() throws -> String { try run(["ip", "-n", "pb.agk.b1", "-o", "link", "show", "eth0"]).out }
        #expect(!(try state()).contains(",UP"), "the fault is in effect")
        // The agent dies first (no time to revert), then its controller.
        _ = try run(["pkill", "-KILL", "-f", "\(pathbed) agent"])
        kill(pid, SIGKILL)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
        var waited = 0
        while waited < 100, !(try state()).contains(",UP") { usleep(100_000); waited += 1 }
        let after = try state()
        #expect(after.contains(",UP"), "the fault's watchdog brought the link back at its deadline (2 s after its end)")
    }

    /// IPv6 chatter (DAD, MLD, router solicitations) of nodes that have no IPv6 address is what
    /// flooded linear 10000's bridges until ARP requests were lost: such a node has no link-local
    /// address, and a node with an IPv6 address keeps its own and reaches its peer over IPv6.
    @Test func onlyNodesWithIPv6AddressesSpeakIPv6() throws {
        let before = try hostSnapshot()
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "six"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("six.yaml").path
        try """
            name: six
            bridges: { s: { subnet: 10.9.0.0/24 } }
            nodes: { a: {}, b: {}, c: {} }
            links:
              - { endpoints: [a:eth0, s] }
              - { endpoints: [b:eth0, s] }
              - { endpoints: [b:eth1, c:eth0], subnet: "fd00:9::/64" }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let up = try pb("up", file)
        try #require(up.status == 0, "\(up.out) \(up.err)")
        let a = try run(["ip", "-n", "pb.six.a", "-6", "addr", "show", "dev", "eth0"]).out
        #expect(!a.contains("fe80"), "a has no IPv6 address, so no link-local one: \(a)")
        let b = try run(["ip", "-n", "pb.six.b", "-6", "addr", "show", "dev", "eth1"]).out
        #expect(b.contains("fe80") && b.contains("fd00:9::1"), "\(b)")
        #expect(try run(["ip", "netns", "exec", "pb.six.a", "ping", "-c", "1", "-W", "2", "10.9.0.2"]).status == 0)
        // DAD must finish before the address is used: up to 2 s.
        var reached = false
        for _ in 0..<20 where !reached {
            reached = try run(["ip", "netns", "exec", "pb.six.b", "ping", "-6", "-c", "1", "-W", "1", "fd00:9::2"]).status == 0
            if !reached { usleep(200_000) }
        }
        #expect(reached, "b reaches c over IPv6")
        _ = try pb("down", "six")
        #expect(try hostSnapshot() == before)
    }

    /// A node added to a running lab, wired to a node that stays: one new veth, nothing rebuilt,
    /// traffic to it at once; then removed again, which rebuilds its neighbour (a link is gone)
    /// without racing the kernel's freeing of the old devices.
    @Test func aNodeAddedToARunningLabIsWiredInPlace() throws {
        let before = try hostSnapshot()
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "two-paths"); try? FileManager.default.removeItem(at: d) }
        try #require(try pb("up", twoPaths).status == 0)
        let base = try String(contentsOfFile: twoPaths, encoding: .utf8)
        let changed = d.appendingPathComponent("two-paths.yaml").path
        try base.replacingOccurrences(of: "  - { name: backbone, endpoints: [router:eth3, server:eth0], profile: backbone, subnet: 10.0.3.0/24 }",
                                      with: "  - { name: backbone, endpoints: [router:eth3, server:eth0], profile: backbone, subnet: 10.0.3.0/24 }\n  - { name: leaf, endpoints: [router:eth4, server2:eth0], profile: path, subnet: 10.0.4.0/24 }")
            .replacingOccurrences(of: "  router: { forwarding: true }",
                                  with: "  router: { forwarding: true }\n  server2: { routes: [ { to: default, via: 10.0.4.1 } ] }")
            .write(toFile: changed, atomically: true, encoding: .utf8)
        let started = Date()
        let add = try pb("up", changed)
        #expect(add.status == 0 && add.out.contains("link eth4 added") && !add.out.contains("rebuild"), "\(add.out) \(add.err)")
        #expect(Date().timeIntervalSince(started) < 10, "no wait for the kernel: nothing was removed")
        #expect(try run(["ip", "netns", "exec", "pb.two-paths.client", "ping", "-c", "1", "-W", "2", "10.0.4.2"]).status == 0, "client reaches the new node")
        let qdisc = try run(["tc", "-n", "pb.two-paths.router", "qdisc", "show", "dev", "eth4"]).out
        #expect(qdisc.contains("rate 10Mbit"), "the new link has its profile: \(qdisc)")
        // And back: the router loses a link and is rebuilt; client and server get their veths back.
        let back = try pb("up", twoPaths)
        #expect(back.status == 0, "\(back.out) \(back.err)")
        #expect(try run(["ip", "netns", "exec", "pb.two-paths.client", "ping", "-c", "1", "-W", "2", "10.0.3.2"]).status == 0)
        #expect(try pb("status", "two-paths").out.contains("two-paths: up"))
        _ = try pb("down", "two-paths")
        #expect(try hostSnapshot() == before)
    }

    /// Fault plugins that misbehave hold up nothing and are never taken for reverted: one that
    /// never says hello is a problem (not injected) while the link-down after it plays on time;
    /// one that injects and exits without reverting is a problem, not an event reverted.
    @Test func aBrokenFaultPluginHoldsUpNoOtherFaultAndIsAProblem() throws {
        let before = try hostSnapshot()
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "fpl"); try? FileManager.default.removeItem(at: d) }
        let mute = d.appendingPathComponent("mute.sh").path, quitter = d.appendingPathComponent("quitter.sh").path
        try "#!/bin/sh\nexec sleep 100\n".write(toFile: mute, atomically: true, encoding: .utf8)
        try """
            #!/bin/sh
            echo '{"type":"hello","protocol":1,"name":"quitter","roles":["fault"]}'
            read line
            echo '{"type":"injected"}'
            exit 0

            """.write(toFile: quitter, atomically: true, encoding: .utf8)
        let deaf = d.appendingPathComponent("deaf.sh").path
        try """
            #!/bin/bash
            trap '' TERM
            echo '{"type":"hello","protocol":1,"name":"deaf","roles":["fault"]}'
            read line
            echo '{"type":"injected"}'
            exec 0<&- 1>&-
            sleep 100

            """.write(toFile: deaf, atomically: true, encoding: .utf8)
        chmod(mute, 0o755); chmod(quitter, 0o755); chmod(deaf, 0o755)
        let file = d.appendingPathComponent("fpl.yaml").path
        try """
            name: fpl
            nodes: { a: {}, b: {} }
            links:
              - { name: l, endpoints: [a:eth0, b:eth0], subnet: 10.0.0.0/24 }
            run: { duration: 5s }
            schedule:
              - { at: 0.5s, fault: plugin, plugin: ./mute.sh, nodes: [b], for: 3s }
              - { at: 1s, fault: plugin, plugin: ./quitter.sh, nodes: [b], for: 1s }
              - { at: 1.5s, fault: link-down, link: l, for: 1s }
              - { at: 2s, fault: plugin, plugin: ./deaf.sh, nodes: [a], for: 1s }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let started = Date()
        let r = try run([pathbed, "run", "--no-verify", file, "--out", d.path], timeout: 120)
        #expect(r.status == 1, "a fault not injected and one not reverted fail the run: \(r.out) \(r.err.suffix(800))")
        #expect(Date().timeIntervalSince(started) < 40)
        let dir = d.path + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: d.path).first { $0.hasPrefix("fpl-") }))
        let results = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/results.json"))) as? [String: Any])
        let problems = results["problems"] as? [String] ?? []
        #expect(problems.contains { $0.contains("mute.sh") && $0.contains("was not injected") }, "\(problems)")
        #expect(problems.contains { $0.contains("quitter.sh") && $0.contains("without saying reverted") }, "\(problems)")
        let events = results["events"] as? [[String: Any]] ?? []
        let down = events.first { $0["kind"] as? String == "link-down" }
        #expect(abs((down?["actual"] as? Double ?? 0) - 1.5) < 0.1, "the link-down played on time: \(events)")
        #expect(down?["revertActual"] != nil)
        let quit = events.first { ($0["label"] as? String ?? "").contains("quitter") }
        #expect(quit != nil && quit?["revertActual"] == nil, "a fault never said reverted is not recorded as reverted: \(String(describing: quit))")
        // Killed after its grace (it ignores SIGTERM): a problem all the same, not a success.
        #expect(problems.contains { $0.contains("deaf.sh") && $0.contains("without saying reverted") }, "\(problems)")
        #expect(try hostSnapshot() == before)
    }

    /// `pathbed up | head -c 5`: the pipe closes while `up` works. It goes on to the end (SIGPIPE
    /// used to kill it, leaving the lab `building` and its journal and lock behind).
    @Test func aClosedOutputPipeDoesNotStopUpMidway() throws {
        let before = try hostSnapshot()
        defer { _ = try? pb("down", "two-paths") }
        let r = try run(["bash", "-c", "'\(pathbed)' up '\(twoPaths)' 2>&1 | head -c 5; exit ${PIPESTATUS[0]}"])
        #expect(r.status == 0, "\(r.out) \(r.err)")
        let status = try pb("status", "two-paths").out
        #expect(status.contains("two-paths: up"), "\(status)")
        #expect(try pb("down", "two-paths").status == 0)
        #expect(try hostSnapshot() == before)
    }

    /// A namespace named like a lab's node but made by hand (no lab's tag): `exec` does not run
    /// in it, as `down` does not remove it.
    @Test func execRunsNothingInANamespaceNoLabMade() throws {
        _ = try run(["ip", "netns", "add", "pb.handmade.n"])
        defer { _ = try? run(["ip", "netns", "del", "pb.handmade.n"]) }
        let r = try pb("exec", "n", "--", "touch", "/tmp/pb-handmade-ran")
        defer { unlink("/tmp/pb-handmade-ran") }
        #expect(r.status != 0 && r.err.contains("no Pathbed lab made it"), "\(r.out) \(r.err)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/pb-handmade-ran"))
    }

    /// `run --keep`: what the run started is stopped at its end, also a child that cleared its
    /// environment (no tag) and left its group; a program the user had running in the lab
    /// before the run is left alone.
    @Test func aKeptLabKeepsNothingOfTheRunButTheUsersOwn() throws {
        let before = try hostSnapshot()
        let d = try scratchDirectory()
        defer { _ = try? pb("down", "keepy"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("keepy.yaml").path
        try """
            name: keepy
            nodes: { a: {}, b: {} }
            links:
              - { name: l, endpoints: [a:eth0, b:eth0], subnet: 10.0.0.0/24 }
            workloads:
              - { name: c, plugin: command, node: a, duration: 2s, with: { command: "env -i setsid sleep 7741 </dev/null >/dev/null 2>&1 & sleep 30" } }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        try #require(try pb("up", file).status == 0)
        let mine = try run(["bash", "-c", "'\(pathbed)' exec b -- setsid sleep 7742 </dev/null >/dev/null 2>&1 & sleep 0.5"])
        #expect(mine.status == 0)
        let r = try run([pathbed, "run", "--no-verify", file, "--keep", "--out", d.path], timeout: 60)
        #expect(r.status == 0, "\(r.err.suffix(500))")
        let left = try run(["pgrep", "-f", "sleep 774"]).out
        #expect(try run(["pgrep", "-f", "sleep 7741"]).status != 0, "the run's escaped child is gone: \(left)")
        #expect(try run(["pgrep", "-f", "sleep 7742"]).status == 0, "the user's own program runs on")
        #expect(try pb("status", "keepy").out.contains("keepy: up"))
        _ = try pb("down", "keepy")
        #expect(try run(["pgrep", "-f", "sleep 774"]).status != 0)
        #expect(try hostSnapshot() == before)
    }
}
