import Foundation
import Testing
@testable import Hosts
import Planning
import TopologyModel

/// What `pathbed vm up FILE` boots, decided before anything boots: a VM per host with `vm:`, its
/// kernel, memory, CPUs and underlay address, and every error with where it comes from.
@Suite struct LocalVMsTests {
    func lab(_ hosts: String, in dir: URL? = nil) throws -> Topology {
        let file = (dir ?? FileManager.default.temporaryDirectory).appendingPathComponent("lab.yaml").path
        let text = "name: vms\nhosts:\n\(hosts)\nnodes:\n  a: { host: h0 }\n"
        return try TopologyLoader.load(data: Data(text.utf8), file: file)
    }

    @Test func everyHostWithAVMIsBootedWithItsSettings() throws {
        let t = try lab("""
              h0: { underlay: 10.20.30.5, vm: { memory: 2048, cpus: 2 } }
              h1: { mptcp: false, vm: {} }
              h2: { ssh: root@elsewhere }
            """)
        let specs = try LocalVMs.specs(for: t)
        #expect(specs.map(\.name) == ["h0", "h1"], "only hosts with `vm:`")
        #expect(specs[0] == LocalVMs.Spec(name: "h0", mptcp: true, underlay: "10.20.30.5", kernel: .distribution, memoryMiB: 2048, cpus: 2))
        #expect(specs[1].mptcp == false && specs[1].memoryMiB == 1024 && specs[1].cpus == 1)
        // Without `underlay:` a VM gets the next free address from .10 of the first one's /24.
        #expect(specs[1].underlay == "10.20.30.10")
        #expect(t.hosts.first { $0.name == "h0" }?.isLocal == false, "a host with `vm:` is not this machine")
    }

    @Test func underlaysOfDifferentSubnetsAreRefusedBeforeAnyBoot() throws {
        let t = try lab("""
              h0: { underlay: 10.20.30.5, vm: {} }
              h1: { underlay: 10.20.31.5, vm: {} }
            """)
        #expect { try LocalVMs.specs(for: t) } throws: { "\($0)".contains("not in one /24") && "\($0)".contains("h1 10.20.31.5") }
        let same = try lab("""
              h0: { underlay: 10.20.30.5, vm: {} }
              h1: { underlay: 10.20.30.5, vm: {} }
            """)
        #expect { try LocalVMs.specs(for: same) } throws: { "\($0)".contains("the underlay address 10.20.30.5 of another VM") }
        let v6 = try lab("  h0: { underlay: 'fd00::1', vm: {} }")
        #expect { try LocalVMs.specs(for: v6) } throws: { "\($0)".contains("must be IPv4") }
        let none = try lab("  h0: { ssh: root@x }")
        #expect { try LocalVMs.specs(for: none) } throws: { "\($0)".contains("gives no host a `vm:`") }
    }

    @Test func kernelsGivenByPathAreFoundRelativeToTheFileAndChecked() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pb-vms-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("tree/arch/x86/boot"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("unbuilt"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("image".utf8).write(to: dir.appendingPathComponent("bzImage"))
        try Data("image".utf8).write(to: dir.appendingPathComponent("tree/arch/x86/boot/bzImage"))
        let t = try lab("""
              h0: { vm: { kernel: ./bzImage } }
              h1: { vm: { kernel: tree } }
            """, in: dir)
        let specs = try LocalVMs.specs(for: t)
        #expect(specs[0].kernel == .path(dir.appendingPathComponent("bzImage").path))
        #expect(specs[1].kernel == .path(dir.appendingPathComponent("tree").path), "a built kernel tree")
        let missing = try lab("  h0: { vm: { kernel: ./nowhere/bzImage } }", in: dir)
        #expect { try LocalVMs.specs(for: missing) } throws: { "\($0)".contains("lab.yaml:3:") && "\($0)".contains("nowhere/bzImage does not exist") }
        let unbuilt = try lab("  h0: { vm: { kernel: unbuilt } }", in: dir)
        #expect { try LocalVMs.specs(for: unbuilt) } throws: { "\($0)".contains("not a built kernel tree") }
    }

    @Test func badVMSettingsAreRefusedWithTheirPlace() throws {
        for (hosts, says) in [("  h0: { vm: { cpus: 0 } }", "lab.yaml:3:"), ("  h0: { vm: { memory: 1000000000000 } }", "lab.yaml:3:"),
                              ("  h0: { vm: { kernel: [a] } }", "lab.yaml:3:"), ("  h0: { local: true, vm: {} }", "both `local: true` and a VM"),
                              ("  h0: { vm: { kernel: distribution, disk: 1 } }", "disk")] {
            do {
                _ = try lab(hosts)
                Issue.record("accepted: \(hosts)")
            } catch {
                #expect("\(error)".contains(says), "\(hosts): \(error)")
            }
        }
    }

    /// A state file kept from an earlier boot (PATHBED_VM_DIR on a disk) names pids the kernel
    /// has given to other programs since: `down` signals none of them, and `up` does not take them
    /// for running VMs. (What `down` decides is tested, not `down` itself: it also stops any qemu
    /// named like the pair's, and would stop a VM test's pair running beside this test.)
    @Test func aStalePidOfTheStateFileIsNeverSignalled() throws {
        let other = Process()
        other.executableURL = URL(fileURLWithPath: "/bin/sleep"); other.arguments = ["30"]
        try other.run()
        defer { kill(other.processIdentifier, SIGKILL); other.waitUntilExit() }
        let m = LocalVMs.Machine(name: "mptcp-vm", mptcp: true, sshPort: 1, mac: "52:54:00:5b:00:0a", underlay: "192.168.56.10",
                                 underlayInterface: nil, pid: other.processIdentifier, log: "/dev/null")
        let state = LocalVMs.State(machines: [m], underlayPort: 1, kernelImage: "/boot/x", accelerator: "tcg", started: Date())
        #expect(!LocalVMs.running(m), "a sleep is not the VM")
        #expect(LocalVMs.groupsToStop(state).isEmpty, "down would signal a program that only has the VM's old pid")
        // This test's own process is no VM either, whatever its name.
        var me = m; me.pid = getpid()
        #expect(LocalVMs.groupsToStop(LocalVMs.State(machines: [me], underlayPort: 1, kernelImage: "/boot/x", accelerator: "tcg", started: Date())).isEmpty)
    }
}
