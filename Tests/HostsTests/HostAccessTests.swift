import Foundation
import Testing
@testable import Hosts

/// How the controller reaches other hosts: the ssh command line, inventories.
@Suite struct HostAccessTests {
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
}
