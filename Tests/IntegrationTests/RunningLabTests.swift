import Foundation
import Testing

/// A running lab changed in place, healed, interrupted, and kept apart from what is not its own:
/// on real namespaces, read back with iproute2.
extension LabTests {
    func temporaryFile(_ name: String, _ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pb-\(getpid())-\(name)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aChangedProfileIsChangedInPlaceAndAHandDeletedNodeIsHealed() throws {
        let before = try hostSnapshot()
        let original = try String(contentsOfFile: twoPaths, encoding: .utf8)
        let file = try temporaryFile("two-paths.yaml", original)
        defer { _ = try? pb("down", "two-paths"); unlink(file) }
        try #require(try pb("up", file).status == 0)
        let linkBefore = try run(["ip", "-n", "pb.two-paths.client", "-o", "link", "show", "eth1"]).out
        try original.replacingOccurrences(of: "path: { rate: 10mbit }", with: "path: { rate: 5mbit }").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(!original.contains("5mbit") && original.contains("path: { rate: 10mbit }"), "the fixture changed; update this test")
        let dry = try pb("up", "--dry-run", file)
        #expect(dry.status == 0 && dry.out.contains("change profile") && dry.out.contains("nothing was changed"))
        #expect(try run(["tc", "-n", "pb.two-paths.client", "qdisc", "show", "dev", "eth1"]).out.contains("10Mbit"))
        let changed = try pb("up", file)
        #expect(changed.status == 0 && changed.out.contains("changed in place"), "\(changed.out) \(changed.err)")
        #expect(try run(["tc", "-n", "pb.two-paths.client", "qdisc", "show", "dev", "eth1"]).out.contains("5Mbit"))
        #expect(try run(["ip", "-n", "pb.two-paths.client", "-o", "link", "show", "eth1"]).out == linkBefore, "the same interface, not a new one")
        // Traffic follows the new rate.
        let tcp = try iperfMbps(["10.0.3.2", "-B", "10.0.1.2"], server: "server", mptcp: false)
        #expect(tcp > 4.5 && tcp < 5.3, "TCP over the changed path: \(tcp) Mbit/s")
        // A namespace deleted by hand: status says so, up rebuilds it.
        #expect(try run(["ip", "netns", "del", "pb.two-paths.server"]).status == 0)
        let status = try pb("status", "two-paths")
        #expect(status.status == 1 && status.out.contains("degraded") && status.out.contains("pb.two-paths.server"))
        let healed = try pb("up", file)
        #expect(healed.status == 0 && healed.out.contains("its namespace is gone"), "\(healed.out) \(healed.err)")
        #expect(try pb("exec", "client", "--", "ping", "-c", "1", "-W", "2", "10.0.3.2").status == 0)
        #expect(try pb("status", "two-paths").status == 0)
        #expect(try pb("down", "two-paths").status == 0)
        #expect(try hostSnapshot() == before)
    }

    @Test func aNamespaceNamedLikeTheLabsButNotItsOwnIsNeverTouched() throws {
        #expect(try run(["ip", "netns", "add", "pb.two-paths.intruder"]).status == 0)
        defer { _ = try? run(["ip", "netns", "del", "pb.two-paths.intruder"]) }
        let up = try pb("up", twoPaths)
        #expect(up.status == 1 && up.err.contains("did not make"), "\(up.err)")
        let down = try pb("down", "two-paths")
        #expect(down.status == 0 && down.err.contains("pb.two-paths.intruder") && down.err.contains("left alone"))
        #expect(try run(["ip", "netns", "list"]).out.contains("pb.two-paths.intruder"))
        for bad in ["", "*", "two-paths.server", "Two-Paths"] {
            let r = try pb("down", bad)
            #expect(r.status != 0 && (r.err.contains("is not a lab name") || r.err.contains("cannot be empty")), "down '\(bad)': \(r.err)")
        }
    }

    @Test func sigtermDuringUpRemovesWhatItBuilt() throws {
        let before = try hostSnapshot()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pb-term-\(getpid()).yaml").path
        #expect(try pb("generate", "linear", "400", "--name", "termed", "-o", file).status == 0)
        defer { _ = try? pb("down", "termed"); unlink(file) }
        let errPath = file + ".err"
        defer { unlink(errPath) }
        let pid = try spawn([pathbed, "up", "-q", file], stderr: errPath)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, try run(["ip", "netns", "list"]).out.components(separatedBy: "pb.termed").count < 20 { usleep(2000) }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        #expect(err.contains("interrupted by SIGTERM") && err.contains("removed"), "\(err)")
        #expect(!(try run(["ip", "netns", "list"]).out.contains("pb.termed")), "nothing of the lab is left")
        #expect(try hostSnapshot() == before)
    }

    @Test func bridgesWithSTPComeUp() throws {
        let file = try temporaryFile("stp.yaml", """
            name: stp
            nodes: { a: {}, b: {} }
            bridges: { s1: { stp: true, subnet: 10.7.0.0/24 }, s2: { stp: true }, s3: { stp: true } }
            links:
              - { endpoints: [a:eth0, s1] }
              - { endpoints: [b:eth0, s2] }
              - { endpoints: [s1, s2] }
              - { endpoints: [s2, s3] }
              - { endpoints: [s3, s1] }
            """)
        defer { _ = try? pb("down", "stp"); unlink(file) }
        let up = try pb("up", file)
        try #require(up.status == 0, "\(up.err)")
        #expect(try run(["ip", "-n", "pb.stp", "-d", "link", "show", "s1"]).out.contains("stp_state 1"))
        // Three bridges in a ring make a loop; STP blocks one port (ports forward after 2 x 2 s).
        var reached = false
        for _ in 0..<20 where !reached {
            reached = try pb("exec", "a", "--", "ping", "-c", "1", "-W", "1", "10.7.0.2").status == 0
        }
        #expect(reached, "a reaches b across the looped bridges once STP has converged")
    }

    /// Bridges joined by plain links are one kernel bridge; `merge: false` splits it in place and
    /// removing it joins them again, with traffic across at every step and nothing left after.
    @Test func plainBridgeLinksAreOneKernelBridgeAndSplitInPlace() throws {
        let before = try hostSnapshot()
        let yaml = try String(contentsOf: root.appendingPathComponent("Tests/Fixtures/bridge-line.yaml"), encoding: .utf8)
        let file = try temporaryFile("line.yaml", yaml)
        defer { _ = try? pb("down", "line"); unlink(file) }
        func devices() throws -> [String] {
            try run(["ip", "-n", "pb.line", "-o", "link", "show"]).out.split(separator: "\n").compactMap { line in
                line.split(separator: ":").dropFirst().first.map { String($0.trimmingCharacters(in: .whitespaces).split(separator: "@")[0]) }
            }.filter { $0 != "lo" }.sorted()
        }
        func master(_ port: String) throws -> String? {
            let out = try run(["ip", "-n", "pb.line", "-o", "link", "show", port]).out
            guard let r = out.range(of: " master ") else { return nil }
            return String(out[r.upperBound...].prefix { $0 != " " })
        }
        func reaches(_ target: String) throws -> Bool { try pb("exec", "h1", "--", "ping", "-c", "1", "-W", "2", target).status == 0 }
        try #require(try pb("up", file).status == 0)
        #expect(try devices() == ["h1.eth0", "h2.eth0", "h3.eth0", "s1"], "one bridge, no veth pair between bridges")
        #expect(try master("h3.eth0") == "s1")
        #expect(try reaches("10.8.0.3"))
        try yaml.replacingOccurrences(of: "[s2, s3] }", with: "[s2, s3], merge: false }").write(toFile: file, atomically: true, encoding: .utf8)
        let split = try pb("up", file)
        #expect(split.status == 0 && split.out.contains("changed in place"), "\(split.out) \(split.err)")
        #expect(try devices() == ["h1.eth0", "h2.eth0", "h3.eth0", "s1", "s2.s3", "s3", "s3.s2"])
        #expect(try master("h3.eth0") == "s3" && master("s2.s3") == "s1" && master("s3.s2") == "s3")
        #expect(try reaches("10.8.0.3"), "h1 reaches h3 through the veth pair between the two bridges")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let joined = try pb("up", file)
        #expect(joined.status == 0 && joined.out.contains("changed in place"), "\(joined.out) \(joined.err)")
        #expect(try devices() == ["h1.eth0", "h2.eth0", "h3.eth0", "s1"])
        #expect(try reaches("10.8.0.3") && reaches("10.8.0.2"))
        #expect(try pb("status", "line").status == 0)
        #expect(try pb("down", "line").status == 0)
        #expect(try hostSnapshot() == before)
    }

    /// A run killed with kill -9 leaves the transfer workload's files in /tmp; `down` removes
    /// them, and nothing else named like them: not a symlink, not a directory others can write,
    /// not another lab's.
    @Test func downRemovesTheTransferFilesOfAKilledRunAndNothingElse() throws {
        func mktemp(_ template: String) throws -> String {
            try run(["mktemp", "-d", template]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let leftover = try mktemp("/tmp/pathbed-transfer-leftover-0.XXXXXX")
        #expect(try run(["truncate", "-s", "1000000", "\(leftover)/f1000000"]).status == 0)
        let target = try mktemp("/tmp/pb-test-target.XXXXXX")
        #expect(try run(["touch", "\(target)/keep"]).status == 0)
        let link = "/tmp/pathbed-transfer-leftover-1.abcdef"
        #expect(symlink(target, link) == 0)
        let open = try mktemp("/tmp/pathbed-transfer-leftover-2.XXXXXX")
        chmod(open, 0o755)
        let otherLab = try mktemp("/tmp/pathbed-transfer-leftover-2-0.XXXXXX")
        defer { for p in [target, open, otherLab, leftover] { _ = try? run(["rm", "-rf", p]) }; unlink(link) }
        #expect(try pb("down", "leftover").status == 0)
        #expect(!FileManager.default.fileExists(atPath: leftover), "the killed run's files are gone")
        #expect(FileManager.default.fileExists(atPath: "\(target)/keep"), "nothing is removed through a symlink")
        #expect(FileManager.default.fileExists(atPath: link) && FileManager.default.fileExists(atPath: open) && FileManager.default.fileExists(atPath: otherLab))
    }
}
