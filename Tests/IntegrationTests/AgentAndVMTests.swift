import Foundation
import Testing
import TopologyModel

/// Labs over several hosts, for real: a second host reached through `pathbed agent` (started
/// as a plain command here: the stdio that ssh would give), and the built-in VM pair running
/// the origin's two-VM testbed.
extension LabTests {
    static let twoHosts = """
        name: agt
        hosts:
          here: {}
          there: { ssh: nobody@remote.invalid }
        nodes:
          a1: { host: here }
          a2: { host: here }
          b1: { host: there }
          b2: { host: there }
        links:
          - { endpoints: [a1:eth0, a2:eth0], subnet: 10.77.1.0/30 }
          - { endpoints: [b1:eth0, b2:eth0], subnet: 10.77.2.0/30 }
        """

    func scratch() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pb-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    @Test func aLabSpansTwoHostsThroughTheAgent() throws {
        let before = try hostSnapshot()
        let d = try scratch()
        defer { _ = try? pb("down", "agt"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("two.yaml").path, inv = d.appendingPathComponent("inv.json").path
        try Self.twoHosts.write(toFile: file, atomically: true, encoding: .utf8)
        try #"{"hosts": {"there": {"command": ["\#(pathbed)", "agent"]}}}"#.write(toFile: inv, atomically: true, encoding: .utf8)

        let up = try pb("up", file, "--inventory", inv)
        #expect(up.status == 0, "\(up.err)")
        #expect(up.out.contains("there (\(pathbed) agent)"), "per-host timings: \(up.out)")
        let status = try pb("status", "agt")
        #expect(status.status == 0 && status.out.contains("pb.agt.b1") && status.out.contains("pb.agt.a1"), "\(status.out)")
        // exec on the remote host: output streamed back, exit code passed on.
        let ping = try pb("exec", "b1", "--", "ping", "-c", "1", "-W", "2", "10.77.2.2")
        #expect(ping.status == 0 && ping.out.contains("1 received"), "\(ping.out) \(ping.err)")
        let code = try pb("exec", "b2", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
        #expect(code.status == 3 && code.out == "out\n" && code.err == "err\n")
        let doctor = try pb("doctor", file, "--inventory", inv)
        #expect(doctor.out.contains("host there (\(pathbed) agent)") && doctor.out.contains("kernel "), "\(doctor.out)")
        let down = try pb("down", "agt")
        #expect(down.status == 0 && down.out.contains("removed 4 namespaces"), "\(down.out) \(down.err)")
        #expect(try hostSnapshot() == before)
    }

    /// A link between two hosts carried by VXLAN, for real on this machine (whose kernel has no
    /// GRE): the second host is an agent in a network namespace of its own (nsenter: the mount
    /// namespace stays this machine's, so the lab's namespaces are seen by both), joined to this one by
    /// a veth pair that stands for the underlay. The MTU plan raises both underlay ends to 1550
    /// (1500 + VXLAN's 50), the don't-fragment probes go through both ways, traffic crosses, a
    /// fault on each host cuts it and `down` leaves both hosts as they were.
    @Test func aLinkBetweenHostsIsCarriedByVXLAN() throws {
        let id = String(UUID().uuidString.prefix(4)).lowercased()
        let far = "pbt-far-\(id)", near = "pbtu\(id)", farEnd = "pbtv\(id)"
        _ = try run(["ip", "netns", "add", far])
        defer { _ = try? run(["ip", "link", "del", near]); _ = try? run(["ip", "netns", "del", far]) }
        for argv in [["ip", "link", "add", near, "type", "veth", "peer", "name", farEnd, "netns", far],
                     ["ip", "addr", "add", "10.251.\(0).1/30", "dev", near], ["ip", "link", "set", near, "up"],
                     ["ip", "-n", far, "addr", "add", "10.251.0.2/30", "dev", farEnd], ["ip", "-n", far, "link", "set", farEnd, "up"],
                     ["ip", "-n", far, "link", "set", "lo", "up"]] {
            let r = try run(argv)
            try #require(r.status == 0, "\(argv): \(r.err)")
        }
        let before = try hostSnapshot()
        let d = try scratch()
        defer { _ = try? pb("down", "vxl"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("vxlan.yaml").path, inv = d.appendingPathComponent("inv.json").path
        try """
            name: vxl
            tunnel: vxlan
            hosts:
              here: { underlay: 10.251.0.1, mtu: 1550 }
              there: { ssh: nobody@remote.invalid, underlay: 10.251.0.2, mtu: 1550 }
            nodes:
              a1: { host: here }
              b1: { host: there }
            links:
              - { name: cross, endpoints: [a1:eth0, b1:eth0], subnet: 10.77.3.0/30 }
            workloads:
              - { name: echo, plugin: ping, client: a1, server: b1, duration: 6s, with: { interval: 0.1 } }
            schedule:
              - { at: 1s, fault: link-down, link: cross, for: 1s }
              - { at: 3s, fault: partition, nodes: [b1], for: 1s }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        try #"{"hosts": {"there": {"command": ["nsenter", "--net=/run/netns/\#(far)", "\#(pathbed)", "agent"]}}}"#.write(toFile: inv, atomically: true, encoding: .utf8)

        let plan = try pb("plan", file)
        #expect(plan.out.contains("vxlan VNI") && plan.out.contains("type vxlan id"), "\(plan.out)")
        let up = try pb("up", file, "--inventory", inv)
        try #require(up.status == 0, "\(up.out) \(up.err)")
        #expect(up.err.contains("vxlan tunnel of link cross (VNI") && up.err.contains("don't fragment") && up.err.contains(": ok"), "the don't-fragment probes: \(up.err)")
        let mtu = try run(["cat", "/sys/class/net/\(near)/mtu"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(mtu == "1550", "the underlay raised for VXLAN's 50 bytes: \(mtu)")
        let dev = try run(["ip", "-n", "pb.vxl.a1", "-d", "link", "show", "eth0"]).out
        #expect(dev.contains("vxlan id") && dev.contains("remote 10.251.0.2") && dev.contains("dstport 4789"), "\(dev)")
        let ping = try pb("exec", "b1", "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-s", "1472", "10.77.3.1")
        #expect(ping.status == 0 && ping.out.contains("3 received"), "full-size frames cross: \(ping.out) \(ping.err)")

        // A second lab over the same underlay raises it further; its `down` leaves it raised for
        // the first (which still needs 1550), and the first's `down` puts back the 1500 of before.
        let second = d.appendingPathComponent("second.yaml").path
        try (try String(contentsOfFile: file, encoding: .utf8)).replacingOccurrences(of: "name: vxl", with: "name: vxm").replacingOccurrences(of: "mtu: 1550", with: "mtu: 1600")
            .replacingOccurrences(of: "10.77.3.0/30", with: "10.77.4.0/30").write(toFile: second, atomically: true, encoding: .utf8)
        defer { _ = try? pb("down", "vxm") }
        let up2 = try pb("up", second, "--inventory", inv)
        #expect(up2.status == 0, "\(up2.out) \(up2.err)")
        let down2 = try pb("down", "vxm")
        #expect(down2.status == 0 && down2.out.contains("left at its raised MTU: lab vxl still needs it"), "\(down2.out) \(down2.err)")
        #expect(try run(["cat", "/sys/class/net/\(near)/mtu"]).out.trimmingCharacters(in: .whitespacesAndNewlines) == "1600", "raised for the lab still up")
        let still = try pb("exec", "b1", "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", "1472", "10.77.3.1")
        #expect(still.status == 0 && still.out.contains("2 received"), "the first lab's full-size frames still cross: \(still.out)")

        // A run with a fault on each host's end: the link down here, the node cut off there.
        let played = try run([pathbed, "run", "--no-verify", file, "--inventory", inv, "--out", d.path], timeout: 120)
        #expect(played.status == 0, "\(played.out.suffix(1500)) \(played.err.suffix(1500))")
        if played.status == 0, let runDir = try FileManager.default.contentsOfDirectory(atPath: d.path).first(where: { $0.hasPrefix("vxl-") }) {
            let r = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent(runDir + "/results.json"))) as? [String: Any])
            let times = ((r["workloads"] as? [[String: Any]])?.first?["series"] as? [[String: Any]])?.first?["times"] as? [Double] ?? []
            #expect(times.contains { $0 < 0.9 } && times.contains { $0 > 2.3 && $0 < 2.9 } && times.contains { $0 > 4.3 }, "replies before, between and after the faults: \(times)")
            #expect(!times.contains { $0 > 1.3 && $0 < 1.8 }, "none while the link was down: \(times.filter { $0 > 1 && $0 < 2.2 })")
            #expect(!times.contains { $0 > 3.3 && $0 < 3.8 }, "none while b1 was cut off: \(times.filter { $0 > 3 && $0 < 4.2 })")
        }
        // This machine rebooted (its /run, the journal with it, is gone; the other host keeps its
        // part of the lab and its MTU records): `down FILE` reaches the hosts the file names, and
        // each host's records say which underlays to put back.
        let farMTU = { try run(["ip", "netns", "exec", far, "cat", "/sys/class/net/\(farEnd)/mtu"]).out.trimmingCharacters(in: .whitespacesAndNewlines) }
        let again = try pb("up", file, "--inventory", inv)
        try #require(again.status == 0, "\(again.out) \(again.err)")
        let raisedFar = try farMTU()
        #expect(raisedFar == "1550", "the far underlay raised again: \(raisedFar); up said: \(again.err.suffix(600))")
        let journal = (ProcessInfo.processInfo.environment["PATHBED_STATE_DIR"] ?? "/run/pathbed/labs") + "/vxl.json"
        try #require(unlink(journal) == 0, "the journal \(journal) was there")
        let down = try pb("down", file, "--inventory", inv)
        #expect(down.status == 0 && down.err.contains("no journal of lab vxl") && down.out.contains("back to MTU 1500"), "\(down.out) \(down.err)")
        #expect(try run(["cat", "/sys/class/net/\(near)/mtu"]).out.trimmingCharacters(in: .whitespacesAndNewlines) == "1500", "the underlay MTU put back")
        #expect(try farMTU() == "1500", "the far host's underlay MTU put back, from its own record")
        #expect(try hostSnapshot() == before)
        #expect(try run(["ip", "-n", far, "-o", "link"]).out.split(separator: "\n").count == 2, "the far host holds only lo and its underlay again")
    }

    @Test func anAgentOfAnotherProtocolIsRefusedBeforeAnyChange() throws {
        let before = try hostSnapshot()
        let d = try scratch()
        defer { _ = try? pb("down", "agt"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("two.yaml").path, inv = d.appendingPathComponent("inv.json").path
        try Self.twoHosts.write(toFile: file, atomically: true, encoding: .utf8)
        // An agent from the future: answers the handshake with protocol 99.
        let fake = #"read line; echo '{\"id\":0,\"clock\":1,\"protocol\":99,\"error\":{\"kind\":\"protocol\",\"message\":\"this agent speaks protocol 99\"}}'; sleep 2"#
        try #"{"hosts": {"there": {"command": ["sh", "-c", "\#(fake)"]}}}"#.write(toFile: inv, atomically: true, encoding: .utf8)
        let up = try pb("up", file, "--inventory", inv)
        #expect(up.status == 1 && up.err.contains("protocol 99") && up.err.contains("same Pathbed"), "\(up.err)")
        #expect(try hostSnapshot() == before, "nothing was built on either host")
    }

    /// A controller that vanishes while the agent's replies fill the pipe to it (the agent's
    /// writes block, as when ssh's window is full and no end of file comes): the agent still
    /// notices the silence and ends. It lived forever before (its check ran after a write).
    @Test func anAgentStuckWritingToAVanishedControllerEnds() throws {
        var toAgent: [Int32] = [0, 0], fromAgent: [Int32] = [0, 0]
        try #require(pipe(&toAgent) == 0 && pipe(&fromAgent) == 0)
        defer { close(toAgent[1]); close(fromAgent[0]) }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("pb-stuck-\(UUID().uuidString.prefix(8)).log").path
        defer { unlink(log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toAgent[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromAgent[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addclose(&actions, toAgent[1]); posix_spawn_file_actions_addclose(&actions, fromAgent[0])
        var cargs: [UnsafeMutablePointer<CChar>?] = [strdup(pathbed), strdup("agent"), nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        try #require(posix_spawn(&pid, pathbed, &actions, nil, &cargs, environ) == 0)
        close(toAgent[0]); close(fromAgent[1])
        defer { if pid > 0 { kill(pid, SIGKILL); var st: Int32 = 0; waitpid(pid, &st, 0) } }
        // The handshake, one heartbeat, then requests whose replies fill the pipe nobody reads.
        var lines = #"{"id": 0, "hello": {"protocol": 5, "version": "test", "host": "there"}}"# + "\n" + #"{"id": -1, "heartbeat": {}}"# + "\n"
        for k in 1...3000 { lines += #"{"id": \#(k), "info": {}}"# + "\n" }
        let data = Array(lines.utf8)
        // The agent reads while it can write; its stdin pipe may fill too: write what goes in,
        // until its replies fill the pipe (20 s at most: its first answer can take seconds).
        _ = fcntl(toAgent[1], F_SETFL, fcntl(toAgent[1], F_GETFL) | O_NONBLOCK)
        var sent = 0, readable = Int32(0)
        let until = Date().addingTimeInterval(20)
        while readable <= 60_000 && Date() < until {
            let n = sent < data.count ? data[sent...].withUnsafeBytes { write(toAgent[1], $0.baseAddress, $0.count) } : 0
            if n > 0 { sent += n } else { usleep(10_000) }
            _ = ioctl(fromAgent[0], UInt(FIONREAD), &readable)
        }
        #expect(readable > 60_000, "the agent's replies filled the pipe: \(readable) bytes")
        // It took the handshake (the protocol number above is AgentProtocol.version: a refused
        // hello would make this a test of something else).
        var head = [UInt8](repeating: 0, count: 2048)
        let got = read(fromAgent[0], &head, head.count)
        let start = String(decoding: head.prefix(max(0, got)), as: UTF8.self)
        #expect(start.contains(#""hello":{"#) && !start.contains(#""error""#), "the agent's first replies: \(start.prefix(400))")
        // No heartbeat since: 6 s of silence, then 10 s for what it holds, then it ends.
        var status: Int32 = 0, ended = false
        for _ in 0..<400 where !ended { usleep(100_000); ended = waitpid(pid, &status, WNOHANG) == pid }
        if ended { pid = 0 }
        let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(ended, "the agent ended within 40 s of its controller's last heartbeat; it said: \(said.suffix(300))")
        #expect(said.contains("no heartbeat from the controller"), "\(said.suffix(300))")
    }

    @Test func theAgentStopsItsCommandsWhenItsControllerIsKilled() throws {
        let d = try scratch()
        defer { _ = try? pb("down", "agt"); try? FileManager.default.removeItem(at: d) }
        let file = d.appendingPathComponent("two.yaml").path, inv = d.appendingPathComponent("inv.json").path
        try Self.twoHosts.write(toFile: file, atomically: true, encoding: .utf8)
        try #"{"hosts": {"there": {"command": ["\#(pathbed)", "agent"]}}}"#.write(toFile: inv, atomically: true, encoding: .utf8)
        try #require(try pb("up", file, "--inventory", inv).status == 0)
        let marker = "31337.\(getpid())"
        let controller = try spawn([pathbed, "exec", "b1", "--", "sleep", marker])
        let running = { (try? run(["pgrep", "-f", "sleep \(marker)"]).status) == 0 }
        var waited = 0
        while !running() && waited < 100 { usleep(100_000); waited += 1 }
        try #require(running(), "the remote command started")
        kill(controller, SIGKILL)
        var st: Int32 = 0
        waitpid(controller, &st, 0)
        waited = 0
        while running() && waited < 100 { usleep(100_000); waited += 1 }
        #expect(!running(), "the agent saw its controller go and stopped what it ran")
        #expect(try pb("status", "agt").status == 0, "the lab itself stays up")
    }
}

/// The VM test: the built-in pair boots, topologies/thesis-two-vms.yaml goes up across it with
/// the origin's full link profiles (netem inside the VMs), every tunnel is probed, and iperf3
/// measures TCP over WLAN, TCP over LTE and MPTCP over both through the proxy.
extension LabTests {
    static let bench = root.appendingPathComponent(".build/debug/pathbed-bench").path
    static let thesis = root.appendingPathComponent("topologies/thesis-two-vms.yaml").path

    func pairProcesses() throws -> String { try run(["pgrep", "-af", "pathbed-(mptcp|plain)-vm"]).out }

    @Test(.timeLimit(.minutes(20))) func theOriginsTwoVMTestbedRunsOnTheBuiltInPair() throws {
        print("VM test: booting the built-in pair (software emulation: about a minute)")
        let already = try pairProcesses()
        try #require(already.isEmpty, "no VM pair may be running before the test: \(already)")
        // Booted as on a machine just started: /run is empty then, and its state directory too
        // (the first `vm up` after a boot once waited forever: its logins could not make their
        // shared connection's socket in a directory whose parent did not exist).
        let fresh = FileManager.default.temporaryDirectory.appendingPathComponent("pb-fresh-\(UUID().uuidString.prefix(8))").path
        let freshState = ["env", "PATHBED_STATE_DIR=\(fresh)/run/labs"]
        defer {
            _ = try? run([pathbed, "down", "thesis"], timeout: 120); _ = try? run(freshState + [pathbed, "vm", "down"], timeout: 60)
            try? FileManager.default.removeItem(atPath: fresh)
        }
        let boot = try run(freshState + [pathbed, "vm", "up", "--timeout", "420"], timeout: 480)
        try #require(boot.status == 0, "vm up: \(boot.out) \(boot.err)")
        var vm = try run([pathbed, "vm", "status"], timeout: 60)
        #expect(vm.status == 0 && vm.out.contains("mptcp-vm  running") && vm.out.contains("plain-vm  running"), "\(vm.out)")
        #expect(vm.out.contains("role plain (net.mptcp.enabled=0)") && vm.out.contains("role MPTCP (net.mptcp.enabled=1)"), "\(vm.out)")
        #expect(vm.out.components(separatedBy: "mtu 1500").count == 3, "the underlay starts at MTU 1500: \(vm.out)")

        let up = try run([pathbed, "up", Self.thesis], timeout: 240)
        try #require(up.status == 0, "up: \(up.out) \(up.err)")
        #expect(up.out.contains("MTU plan proven: 2 don't-fragment probes"), "\(up.out)")
        #expect(up.err.contains("probe: 1500-byte packets") && up.err.contains("server on plain-vm -> router"), "\(up.err)")
        vm = try run([pathbed, "vm", "status"], timeout: 60)
        #expect(vm.out.components(separatedBy: "mtu 5000").count == 3, "the lab raised both underlays to 5000: \(vm.out)")
        let status = try run([pathbed, "status", "thesis"], timeout: 60)
        #expect(status.status == 0 && status.out.contains("netem delay 50ms"), "netem inside the VMs: \(status.out)")
        let down = try run([pathbed, "down", "thesis"], timeout: 120)
        #expect(down.status == 0 && down.out.contains("back to MTU 1500"), "\(down.out) \(down.err)")

        // The workloads: the benchmark the README's demo runs, on the pair that is up.
        let json = FileManager.default.temporaryDirectory.appendingPathComponent("pb-twovms-\(UUID().uuidString).json").path
        defer { unlink(json) }
        let b = try run([Self.bench, "two-vms", "--file", Self.thesis, "--keep-vms", "--seconds", "6", "--json", json], timeout: 600)
        try #require(b.status == 0, "two-vms: \(b.out.suffix(1500)) \(b.err.suffix(500))")
        print(b.out)
        let f = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        let wlan = f["wlanMbps"] as? Double ?? 0, lte = f["lteMbps"] as? Double ?? 0, mptcp = f["mptcpMbps"] as? Double ?? 0
        // Over 15 Mbit/s unless the emulated MPTCP VM's CPU was the limit (saturated a quarter of the
        // run or more: 14.3-14.5 Mbit/s with it saturated 26-61 %, in three runs of this day); then
        // the rate is the emulator's, and what is left to check is that the shaper still caps it.
        let saturatedVM = (f["saturated"] as? [String: Double] ?? [:])["mptcp-vm"] ?? 0
        if wlan > 15 || saturatedVM < 25 {
            #expect(wlan > 15 && wlan < 20.5, "TCP over the 20 Mbit/s WLAN path: \(wlan) (MPTCP VM saturated \(saturatedVM) % of the run)")
        } else {
            print("VM test: NOT CHECKED that TCP over WLAN reaches 15 Mbit/s: \(wlan) Mbit/s with the emulated MPTCP VM's CPUs saturated \(saturatedVM) % of the run; checked instead that it is over 10 and under the 20 Mbit/s rate")
            #expect(wlan > 10 && wlan < 20.5, "TCP over the 20 Mbit/s WLAN path with its VM's CPU the limit: \(wlan)")
        }
        // Through the proxy, iperf3 also counts what the proxy buffered before the server stopped:
        // up to 11 % over the path's 9.56 Mbit/s goodput in 6 s runs (docs/benchmarks.md).
        #expect(lte > 6 && lte < 11.5, "TCP over the 10 Mbit/s LTE path: \(lte)")
        // MPTCP over both paths beats the best one by 15 % or more, unless the emulated MPTCP VM's CPU
        // was the limit: in CI it gave 17.1 Mbit/s against WLAN's 17.0 once, with the download at 19.9
        // Mbit/s and then 13.7. Then the rate is the CPU's, and what is left to prove is that both paths
        // carried the download and that it did not fall below the best path by more than the CPU took.
        let shares = f["mptcpSubflowShares"] as? [String: Double] ?? [:]
        let saturated = saturatedVM
        #expect(shares.count >= 2 && shares.values.allSatisfy { $0 > 0.1 }, "the MPTCP download went over both paths: \(shares)")
        if mptcp > max(wlan, lte) * 1.15 || saturated < 25 {
            #expect(mptcp > max(wlan, lte) * 1.15, "MPTCP over both clearly beats the best single path: \(mptcp) vs \(wlan), \(lte) (MPTCP VM saturated \(saturated) % of the run)")
        } else {
            print("VM test: NOT CHECKED that MPTCP beats the best path by 15 %: \(mptcp) vs \(wlan), \(lte) Mbit/s with the emulated MPTCP VM's CPUs saturated \(saturated) % of the run; checked instead that both paths carried it (\(shares)) and that it kept 85 % of the best path")
            #expect(mptcp > max(wlan, lte) * 0.85, "MPTCP kept at least 85 % of the best path with its VM's CPU the limit: \(mptcp) vs \(wlan), \(lte)")
        }
        let syns = f["proxyMPCapableSYNs"] as? Int ?? 0, fallbacks = f["proxyFallbacks"] as? Int ?? -1
        #expect(syns > 0 && fallbacks == syns, "every MPTCP connection from the proxy to the plain server fell back to TCP: \(fallbacks) of \(syns)")
        let lteRTT = (f["lteRTT"] as? [String: Any])?["min"] as? Double ?? 0
        #expect(lteRTT > 99 && lteRTT < 130, "LTE's RTT is its two 50 ms delays: \(lteRTT)")

        // Every in-place fault across the pair (netem there): a loss burst and a profile switch on
        // WLAN (htb + netem), a trace on LTE, the plain server cut off; every qdisc as before after.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pb-vmfaults-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try String(contentsOfFile: Self.thesis, encoding: .utf8)
        let faults = String(base[..<(try #require(base.range(of: "\nworkloads:")).lowerBound)]) + """

            workloads:
              - { name: bulk, plugin: iperf3, client: client, server: proxy, mptcp: true, duration: 24s, with: { reverse: true } }
              - { name: rtt, plugin: ping, client: client, server: server, duration: 24s, with: { interval: 0.1 } }
            schedule:
              - { at: 3s, fault: loss-burst, link: wlan, loss: 20%, for: 3s }
              - { at: 8s, fault: profile, link: wlan, profile: lte, for: 3s }
              - { at: 13s, fault: trace, link: lte, for: 4s, with: { file: fading.csv } }
              - { at: 19s, fault: partition, nodes: [server], for: 4s }
            """
        try faults.write(to: dir.appendingPathComponent("faults.yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: root.appendingPathComponent("topologies/traces/path2-fading.csv").path, toPath: dir.appendingPathComponent("fading.csv").path)
        let played = try run([pathbed, "run", "--no-verify", dir.appendingPathComponent("faults.yaml").path, "--out", dir.path], timeout: 300)
        #expect(played.status == 0, "\(played.out.suffix(1500)) \(played.err.suffix(1500))")
        if played.status == 0 {
            let runDir = dir.path + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasPrefix("thesis-") }))
            let r = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runDir + "/results.json"))) as? [String: Any])
            let before = r["metadataBefore"] as? [String: [String: Any]] ?? [:], after = r["metadataAfter"] as? [String: [String: Any]] ?? [:]
            #expect(!before.isEmpty && before.keys.allSatisfy { (before[$0]?["qdiscs"] as? [String]) == (after[$0]?["qdiscs"] as? [String]) }, "every qdisc is back as it was")
            // Each VM's agent read its health with the counters: CPU, its own share, the shaped queues.
            let health = try #require(r["health"] as? [String: Any])
            let hosts = health["hosts"] as? [[String: Any]] ?? []
            #expect(Set(hosts.compactMap { $0["host"] as? String }) == ["mptcp-vm", "plain-vm"], "\(health)")
            #expect(hosts.allSatisfy { ($0["seconds"] as? Double ?? 0) > 10 && ($0["virtualization"] as? String).map { ["KVM", "software emulation"].contains($0) } == true }, "\(hosts)")
            #expect((health["queues"] as? [[String: Any]] ?? []).contains { $0["end"] as? String == "router:wlan0" }, "\(health)")
            #expect((r["settings"] as? [[String: Any]] ?? []).contains { $0["node"] as? String == "client" && $0["congestionControl"] as? String == "cubic" && $0["congestionControlFrom"] as? String == "file" })
            let impacts = (r["impacts"] as? [[String: Any]] ?? []).compactMap { $0["impact"] as? [String: Any] }
            let burst = try #require(impacts.first)
            // LTE (9.5 Mbit/s) carries on through the burst, and the 3 s before it hold the
            // download's slow start: measured 10.5 during against 16.3 before (0.64) once.
            // Judged over the time the loss was in force on every host (`applied`): a saturated
            // emulated VM put it in force late, and the planned window then held no loss (25.8
            // Mbit/s "during" against 18.0 before, once).
            let lossEvent = (r["events"] as? [[String: Any]] ?? []).first { $0["kind"] as? String == "loss-burst" }
            let bulk = ((r["workloads"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "bulk" }?["series"] as? [[String: Any]])?.first
            let bt = bulk?["times"] as? [Double] ?? [], bv = (bulk?["values"] as? [Any] ?? []).map { $0 as? Double }
            func mean(_ a: Double, _ b: Double) -> Double? {
                let v = zip(bt, bv).filter { $0.0 >= a && $0.0 < b }.compactMap(\.1)
                return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
            }
            if let e = lossEvent, let a = e["applied"] as? Double, let b = e["revertActual"] as? Double, b - a >= 1.5,
               let during = mean(a + 0.5, b), let before = mean(1.5, 3) {
                #expect(during < before * 0.75, "20 % loss on WLAN cut the download: \(during) Mbit/s while in force (\(a)-\(b) s) against \(before) before; report: \(burst)")
            } else {
                print("VM test: NOT CHECKED that the loss burst cut the download: in force on every host only \(lossEvent ?? [:]); report: \(burst)")
            }
            let rtt = ((r["workloads"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "rtt" }?["series"] as? [[String: Any]])?.first
            let pingTimes = rtt?["times"] as? [Double] ?? []
            // Between the moment the partition was in force on every host (in the VMs that takes
            // up to a few hundred ms after 19 s) and its revert, no echo got a reply. An echo's
            // send time is its reply's arrival at the controller less its RTT, late by however
            // long the emulated VM took to hand the line over: 300 ms of slack each side (150 was
            // passed once more in a fresh clone, with the MPTCP VM's CPU saturated a third of the
            // run, as the run's health now says).
            let cut = (r["events"] as? [[String: Any]] ?? []).first { $0["kind"] as? String == "partition" }
            let applied = cut?["applied"] as? Double ?? 19, reverted = cut?["revertActual"] as? Double ?? 23
            // With the emulated MPTCP VM saturated, the agent hands ping's lines over up to a second
            // late (a reply stamped 20.50 s inside a partition in force from 19.40 s, once): 1 s then.
            let saturated = hosts.first { $0["host"] as? String == "mptcp-vm" }?["saturated"] as? Double ?? 0
            let slack = saturated >= 25 ? 1.0 : 0.3
            let from = applied + slack, to = reverted - slack
            #expect(applied < reverted && reverted < 23.8, "the partition was applied at \(applied) s and reverted at \(reverted) s")
            #expect(pingTimes.contains { $0 > 17 && $0 < 19 }, "replies before the partition: \(pingTimes.filter { $0 > 16 && $0 < 19.5 })")
            if to - from >= 0.2 {
                #expect(!pingTimes.contains { $0 > from && $0 < to },
                        "no reply from the plain server while it was cut off (\(from) to \(to) s): \(pingTimes.filter { $0 > 18.5 && $0 < 23.5 })")
            } else {
                // In a full suite the emulated MPTCP VM was saturated and every host had the
                // partition only 1.4 s after its planned 19 s, once: no window is left to check.
                print("VM test: NOT CHECKED: no reply while cut off; the partition was in force on every host only from \(applied) s to \(reverted) s (health: \(health["verdict"] ?? "?"), \(hosts.map { "\($0["host"] ?? "?") busy \($0["cpuBusy"] ?? "?") %" }))")
            }
        }

        // Nothing left in the VMs, then nothing left of them.
        for name in ["mptcp-vm", "plain-vm"] {
            let left = try run([pathbed, "vm", "ssh", name, "--", "ip netns list; ip -o link show type gretap | grep -v gretap0"], timeout: 60)
            #expect(left.out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(name) still has: \(left.out)")
        }
        let stop = try run(freshState + [pathbed, "vm", "down"], timeout: 60)
        #expect(stop.status == 0 && stop.out.contains("stopped mptcp-vm, plain-vm"), "\(stop.out)")
        #expect(try pairProcesses().isEmpty, "no qemu or virtme-ng of the pair is left")
        #expect(try run([pathbed, "vm", "status"]).status == 1)
    }
}

/// Three VMs from a file (topologies/three-vms.yaml): one boot for all three, one host on a
/// kernel given by path, a triangle of tunnels (two gretap, two VXLAN), traffic over every tunnel
/// and a fault on each host. Rates are lowered from the file's so that three emulated VMs on a
/// 2-core machine are not the limit of what is measured.
extension LabTests {
    func ourVMProcesses() throws -> String { try run(["pgrep", "-af", "pathbed-(mptcp|plain|client|proxy|server)-vm"]).out }

    @Test(.timeLimit(.minutes(20))) func aLabRunsAcrossThreeVMsOneOnAKernelGivenByPath() throws {
        let already = try ourVMProcesses()
        try #require(already.isEmpty, "no VMs may be running before the test: \(already)")
        let images = try FileManager.default.contentsOfDirectory(atPath: "/boot").filter { $0.hasPrefix("vmlinuz-") }
        let image = "/boot/" + (try #require(images.sorted { $0.compare($1, options: .numeric) == .orderedAscending }.last, "a kernel image in /boot"))
        let d = try scratch()
        defer {
            _ = try? run([pathbed, "down", "triangle"], timeout: 120); _ = try? run([pathbed, "vm", "down"], timeout: 60)
            try? FileManager.default.removeItem(at: d)
        }
        let file = d.appendingPathComponent("three.yaml").path
        var text = try String(contentsOfFile: root.appendingPathComponent("topologies/three-vms.yaml").path, encoding: .utf8)
        for (a, b) in [("server-vm: { underlay: 192.168.56.12, mtu: 5000, mptcp: false, vm: {} }", "server-vm: { underlay: 192.168.56.12, mtu: 5000, mptcp: false, vm: { kernel: \(image) } }"),
                       ("rate: 20mbit", "rate: 8mbit"), ("rate: 10mbit", "rate: 4mbit"), ("rate: 50mbit", "rate: 10mbit")] {
            try #require(text.contains(a), "topologies/three-vms.yaml has \(a)")
            text = text.replacingOccurrences(of: a, with: b)
        }
        try text.write(toFile: file, atomically: true, encoding: .utf8)

        print("three-VM test: booting three VMs (software emulation)")
        let boot = try run([pathbed, "vm", "up", file, "--timeout", "420"], timeout: 480)
        try #require(boot.status == 0, "vm up: \(boot.out) \(boot.err)")
        print("three-VM test: " + (boot.out.split(separator: "\n").first.map(String.init) ?? ""))
        let status = try run([pathbed, "vm", "status"], timeout: 60)
        #expect(status.status == 0 && ["client-vm running", "proxy-vm  running", "server-vm running"].allSatisfy { status.out.contains($0) }, "\(status.out)")
        #expect(status.out.contains("qemu multicast"), "three VMs share one multicast underlay: \(status.out)")
        #expect(status.out.contains("client-vm running; kernel") && status.out.split(separator: "\n").first { $0.hasPrefix("client-vm") }?.contains("(the distribution's: ") == true, "\(status.out)")
        let server = status.out.split(separator: "\n").first { $0.hasPrefix("server-vm") }.map(String.init) ?? ""
        #expect(server.contains("(given: \(image))") && server.contains("role plain (net.mptcp.enabled=0)"), "server-vm on the kernel given by path: \(server)")

        let up = try run([pathbed, "up", file], timeout: 300)
        try #require(up.status == 0, "up: \(up.out) \(up.err)")
        let probes = up.err.split(separator: "\n").filter { $0.contains("probe:") && $0.hasSuffix(": ok") }
        #expect(probes.count == 8, "a don't-fragment probe each way through each of the 4 tunnels: \(up.err)")
        for tunnel in ["gretap tunnel of link wlan", "vxlan tunnel of link lte", "gretap tunnel of link lan", "vxlan tunnel of link direct"] {
            #expect(probes.filter { $0.contains(tunnel) }.count == 2, "\(tunnel) probed both ways")
        }
        print("three-VM test: " + (up.out.split(separator: "\n").first { $0.hasPrefix("lab triangle is up") }.map(String.init) ?? up.out))

        let played = try run([pathbed, "run", "--no-verify", file, "--out", d.path], timeout: 300)
        #expect(played.status == 0, "\(played.out.suffix(1500)) \(played.err.suffix(1500))")
        guard played.status == 0, let runDir = try FileManager.default.contentsOfDirectory(atPath: d.path).first(where: { $0.hasPrefix("triangle-") }) else { return }
        let r = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent(runDir + "/results.json"))) as? [String: Any])
        let workloads = r["workloads"] as? [[String: Any]] ?? []
        func series(_ name: String) -> (times: [Double], values: [Double]) {
            let s = (workloads.first { $0["name"] as? String == name }?["series"] as? [[String: Any]])?.first
            return (s?["times"] as? [Double] ?? [], (s?["values"] as? [Any] ?? []).compactMap { $0 as? Double })
        }
        // Every tunnel carried traffic: MPTCP's subflows over wlan (gretap) and lte (VXLAN), pings
        // through the proxy over lan (gretap) and straight over direct (VXLAN).
        let subflows = (r["subflows"] as? [[String: Any]] ?? []).filter { $0["workload"] as? String == "upload" && $0["node"] as? String == "client" }
        func sent(_ path: String) -> Double {
            subflows.filter { $0["path"] as? String == path }.compactMap { s -> Double? in
                guard let b = s["bytesAcked"] as? [Double], let first = b.first, let last = b.last else { return nil }
                return last - first
            }.reduce(0, +)
        }
        #expect(sent("client:wlan0") > 1e6 && sent("client:lte0") > 1e6, "MPTCP over both tunnels between client-vm and proxy-vm: wlan \(sent("client:wlan0")) B, lte \(sent("client:lte0")) B")
        // The connection above them, read by the agent on 6.1 (MPTCP_INFO's data sequence numbers):
        // its data sent is what its two subflows carried, less their retransmissions.
        let connections = (r["connections"] as? [[String: Any]] ?? []).filter { $0["workload"] as? String == "upload" && $0["node"] as? String == "client" }
        func dataSent(_ c: [String: Any]) -> Double {
            let a = (c["dataAcked"] as? [NSNumber] ?? []).map(\.doubleValue)
            return (a.last ?? 0) - (a.first ?? 0)
        }
        let upload = connections.max { dataSent($0) < dataSent($1) }
        let data = upload.map(dataSent) ?? 0, carried = sent("client:wlan0") + sent("client:lte0")
        #expect(data > 2e6 && carried >= data * 0.99 && carried < data * 1.5 && (upload?["subflows"] as? [Int] ?? []).max() == 2,
                "the upload's data level: \(data) B against \(carried) B on its subflows, subflows \(upload?["subflows"] ?? "none")")
        let (viaProxy, direct) = (series("via-proxy").times, series("direct").times)
        #expect(viaProxy.count > 40 && direct.count > 40, "replies through lan and direct: \(viaProxy.count), \(direct.count)")
        // A fault on each host, each in force when it says: no reply through a tunnel that is down.
        let events = r["events"] as? [[String: Any]] ?? []
        #expect(events.count == 3 && events.allSatisfy { $0["applied"] is Double && $0["revertActual"] is Double }, "three faults applied and reverted: \(events)")
        for (label, times) in [("partition server", viaProxy), ("link-down direct", direct)] {
            guard let e = events.first(where: { $0["label"] as? String == label }), let a = e["applied"] as? Double, let b = e["revertActual"] as? Double else { continue }
            let from = a + 0.5, to = b - 0.5
            if to - from >= 0.3 {
                #expect(!times.contains { $0 > from && $0 < to }, "no reply while \(label) was in force (\(from)-\(to) s): \(times.filter { $0 > a - 1 && $0 < b + 1 })")
            } else {
                print("three-VM test: NOT CHECKED: no reply during \(label): in force on every host only from \(a) to \(b) s")
            }
            #expect(times.contains { $0 > b + 0.5 }, "replies again after \(label)")
        }
        if let e = events.first(where: { $0["label"] as? String == "link-down wlan" }), let a = e["applied"] as? Double, let b = e["revertActual"] as? Double,
           let wlan = subflows.first(where: { $0["path"] as? String == "client:wlan0" }),
           let times = wlan["times"] as? [Double], let acked = wlan["bytesAcked"] as? [Double], b - a > 1.2 {
            let during = zip(times, acked).filter { $0.0 > a + 0.6 && $0.0 < b - 0.1 }.map(\.1)
            #expect((during.max() ?? 0) - (during.min() ?? 0) < 20_000, "nothing acked over wlan while it was down: \(during)")
        }
        // Every host's qdiscs as they were: each fault reverted on its host.
        let before = r["metadataBefore"] as? [String: [String: Any]] ?? [:], after = r["metadataAfter"] as? [String: [String: Any]] ?? [:]
        #expect(before.count == 3 && before.keys.allSatisfy { (before[$0]?["qdiscs"] as? [String]) == (after[$0]?["qdiscs"] as? [String]) }, "every qdisc on every host as before")

        let down = try run([pathbed, "down", "triangle"], timeout: 120)
        #expect(down.status == 0, "\(down.out) \(down.err)")
        for name in ["client-vm", "proxy-vm", "server-vm"] {
            let left = try run([pathbed, "vm", "ssh", name, "--", "ip netns list; ip -o link show type gretap | grep -v gretap0; ip -o link show type vxlan"], timeout: 60)
            #expect(left.out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(name) still has: \(left.out)")
        }
        let stop = try run([pathbed, "vm", "down"], timeout: 60)
        #expect(stop.status == 0 && stop.out.contains("stopped client-vm, proxy-vm, server-vm"), "\(stop.out)")
        #expect(try ourVMProcesses().isEmpty, "no qemu or virtme-ng of the VMs is left")
    }
}

/// vagrant/Vagrantfile is valid Vagrant (scripts/setup installs vagrant and vagrant-libvirt;
/// VMs themselves cannot run here: no boxes without the internet), and its inventory binds the
/// example topology's hosts.
@Suite struct VagrantTests {
    @Test func theVagrantfileValidates() throws {
        let dir = root.appendingPathComponent("vagrant").path
        let r = try run(["sh", "-c", "cd \"$1\" && VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate", "sh", dir], timeout: 120)
        #expect(r.status == 0 && r.out.contains("validated successfully"), "vagrant validate (is vagrant installed? scripts/setup installs it): \(r.out) \(r.err)")
        let inv = try String(contentsOfFile: dir + "/inventory.json", encoding: .utf8)
        let thesis = try TopologyLoader.load(path: root.appendingPathComponent("topologies/thesis-two-vms.yaml").path)
        for h in thesis.hosts { #expect(inv.contains("\"\(h.name)\""), "vagrant/inventory.json binds \(h.name)") }
        let vagrantfile = try String(contentsOfFile: dir + "/Vagrantfile", encoding: .utf8)
        for h in thesis.hosts { #expect(vagrantfile.contains("\"\(h.name)\" => { ip: \"\(h.underlay!)\""), "the Vagrant VM \(h.name) has the topology's underlay address") }
    }
}
