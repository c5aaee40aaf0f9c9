import ArgumentParser
import Engine
import Planning
import Foundation
import Hosts

struct VM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm",
        abstract: "The built-in pair of VMs: mptcp-vm and plain-vm, joined by an underlay.",
        discussion: """
            Two virtme-ng guests of the distribution's kernel (GRE, netem and MPTCP inside), this machine's file \
            system visible read-only in each, joined by a qemu socket network (192.168.56.10 and .11), each \
            reached over ssh on the loopback. `vm up` leaves an inventory that binds the host names mptcp-vm and \
            plain-vm to them: topologies/thesis-two-vms.yaml runs on the pair as it runs on the Vagrant VMs.
            """,
        subcommands: [VMUp.self, VMDown.self, VMStatus.self, VMSSH.self]
    )
}

struct VMUp: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Boot the pair (or find it running).")
    @Option(help: "Memory per VM, MiB.") var memory = 1024
    @Option(help: "CPUs per VM.") var cpus = 1
    @Option(help: "Seconds to wait for both VMs to answer over ssh.") var timeout = 300.0
    @Flag(help: "Use KVM (hardware virtualization) instead of software emulation; only where /dev/kvm works.") var kvm = false

    func run() throws {
        do {
            try LabController.requireRoot("booting the VM pair", "vm up")
            Interrupts.catchSignals()  // Ctrl-C stops both VMs instead of orphaning them
            defer { Interrupts.restoreDefaults() }
            let pair = VMPair()
            var o = VMPair.Options()
            o.memoryMiB = memory; o.cpus = cpus; o.bootTimeout = timeout; o.accelerator = kvm ? "kvm" : "tcg"
            let wasUp = pair.load() != nil
            let s = try pair.up(o) { printError("  \($0)") }
            print(wasUp && s.bootSeconds != nil ? "the VM pair is already up" : "the VM pair is up in \(String(format: "%.0f", s.bootSeconds ?? 0)) s")
            print("  inventory: \(pair.inventoryPath) (used by `pathbed up` when a lab names mptcp-vm or plain-vm)")
            print("  try: pathbed up topologies/thesis-two-vms.yaml   |   pathbed vm status   |   pathbed vm down")
        } catch { throw fail(error) }
    }
}

struct VMDown: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "down", abstract: "Stop the pair, whatever state it is in.")
    func run() throws {
        let stopped = VMPair().down()
        print(stopped.isEmpty ? "the VM pair is not running; nothing to stop" : "stopped \(stopped.joined(separator: " and "))")
    }
}

struct VMStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show each VM: kernel, role, ssh endpoint, underlay and its MTU.")
    func run() throws {
        guard let (s, machines) = VMPair().status() else { print("the VM pair is not up (pathbed vm up)"); throw ExitCode(1) }
        print("kernel image \(s.kernelImage), \(s.accelerator == "kvm" ? "KVM" : "software emulation"), underlay on qemu socket port \(s.underlayPort)\(s.bootSeconds.map { String(format: ", booted in %.0f s", $0) } ?? "")")
        var healthy = true
        for m in machines {
            let state = !m.running ? "STOPPED" : m.answers ? "running" : "running, NOT answering over ssh"
            if !m.running || !m.answers { healthy = false }
            print("\(m.machine.name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(state); kernel \(m.machine.kernel ?? "?"); role \(m.machine.mptcp ? "MPTCP" : "plain")"
                  + "\(m.mptcpEnabled.map { " (net.mptcp.enabled=\($0))" } ?? ""); ssh root@127.0.0.1:\(m.machine.sshPort); "
                  + "underlay \(m.machine.underlay) on \(m.machine.underlayInterface ?? "?") mtu \(m.underlayMTU ?? "?"); pid \(m.machine.pid)")
        }
        if !healthy { throw ExitCode(1) }
    }
}

struct VMSSH: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ssh", abstract: "Open a shell in a VM, or run one command there.")
    @Argument(help: "mptcp-vm or plain-vm.") var name: String
    @Argument(parsing: .postTerminator, help: "A command (default: a shell).") var command: [String] = []

    func run() throws {
        do {
            let argv = try VMPair().sshCommand(name, command)
            var cargs = argv.map { strdup($0) }
            cargs.append(nil)
            execvp("ssh", &cargs)
            throw LabError("cannot run ssh: \(String(cString: strerror(errno)))", fix: "apt-get install openssh-client")
        } catch { throw fail(error) }
    }
}
