import ArgumentParser
import Engine
import Planning
import Foundation
import Hosts

struct VM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm",
        abstract: "Local VMs for a lab's hosts: the built-in pair (mptcp-vm, plain-vm), or one per host of a file.",
        discussion: """
            virtme-ng guests, this machine's file system visible read-only in each, joined by one underlay \
            (192.168.56.0/24 unless the hosts say), each reached over ssh on the loopback. Without a file, \
            `vm up` boots the built-in pair of the distribution's kernel: topologies/thesis-two-vms.yaml runs \
            on it as on the Vagrant VMs. With a file, it boots a VM for each host that has `vm:`, each with \
            its kernel (the distribution's, an image file or a kernel build tree), memory and CPUs \
            (docs/vms.md). `vm up` leaves an inventory that binds the host names to the VMs; `up` and \
            `run` use it. One set of VMs runs at a time.
            """,
        subcommands: [VMUp.self, VMDown.self, VMStatus.self, VMSSH.self]
    )
}

struct VMUp: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Boot the VMs of a lab file, or the built-in pair (or find them running).")
    @Argument(help: "A topology whose hosts with `vm:` to boot (default: the built-in pair).") var file: String?
    @Option(help: "Memory per VM of the built-in pair, MiB (a file gives each host's).") var memory = 1024
    @Option(help: "CPUs per VM of the built-in pair (a file gives each host's).") var cpus = 1
    @Option(help: "Seconds to wait for every VM to answer over ssh.") var timeout = 300.0
    @Flag(help: "Use KVM (hardware virtualization) instead of software emulation; only where /dev/kvm works.") var kvm = false

    func run() throws {
        do {
            var specs: [LocalVMs.Spec]?
            var absolute: String?
            if let file {
                let t = try loadTopology(file, sayWarnings: true)
                specs = try LocalVMs.specs(for: t)
                absolute = URL(fileURLWithPath: file).standardizedFileURL.path
            }
            try LabController.requireRoot("booting VMs", "vm up\(file.map { " \($0)" } ?? "")")
            Interrupts.catchSignals()  // Ctrl-C stops the VMs instead of orphaning them
            defer { Interrupts.restoreDefaults() }
            let vms = LocalVMs()
            var o = LocalVMs.Options()
            o.memoryMiB = memory; o.cpus = cpus; o.bootTimeout = timeout; o.accelerator = kvm ? "kvm" : "tcg"
            // One `vm up` or `vm down` at a time: a second waits for the first's boot (at most
            // two of its boots: a timed-out boot is tried once more), then finds its VMs.
            let lock = try vms.exclusive(wait: 2 * (timeout + 200)) { printError("  \($0)") }
            defer { lock.release() }
            let before = vms.load()?.started
            let s = try vms.up(o, specs: specs, file: absolute) { printError("  \($0)") }
            let names = s.machines.map(\.name).joined(separator: ", ")
            print(s.started == before ? "the VMs are already up (\(names))" : "\(s.machines.count) VMs up in \(String(format: "%.0f", s.bootSeconds ?? 0)) s (\(names))")
            print("  inventory: \(vms.inventoryPath) (used by `pathbed up` and `run` when a lab names these hosts)")
            print("  try: pathbed up \(file ?? "topologies/thesis-two-vms.yaml")   |   pathbed vm status   |   pathbed vm down")
        } catch { throw fail(error) }
    }
}

struct VMDown: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "down", abstract: "Stop the VMs, whatever state they are in.")
    func run() throws {
        let vms = LocalVMs()
        // A `vm up` under way gets 10 s to finish; then its VMs are stopped anyway (that is what
        // a `vm down` beside a boot that hangs is for), and that boot fails saying so.
        let lock = try? vms.exclusive(wait: 10) { printError("  \($0)") }
        if lock == nil { printError("  another `pathbed vm` command is still running: stopping the VMs anyway") }
        defer { lock?.release() }
        let stopped = vms.down()
        print(stopped.isEmpty ? "no VMs are running; nothing to stop" : "stopped \(stopped.joined(separator: ", "))")
    }
}

struct VMStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show each VM: kernel, role, ssh endpoint, underlay and its MTU.")
    func run() throws {
        guard let (s, machines) = LocalVMs().status() else { print("no VMs are up (pathbed vm up [FILE])"); throw ExitCode(1) }
        print("\(s.file.map { "VMs of \($0)" } ?? "the built-in pair"), \(s.accelerator == "kvm" ? "KVM" : "software emulation"), underlay "
              + (s.underlayGroup.map { "on qemu multicast \($0):\(s.underlayPort)" } ?? "on qemu socket port \(s.underlayPort)")
              + (s.bootSeconds.map { String(format: ", booted in %.0f s", $0) } ?? ""))
        var healthy = true
        for m in machines {
            let state = !m.running ? "STOPPED" : m.answers ? "running" : "running, NOT answering over ssh"
            if !m.running || !m.answers { healthy = false }
            print("\(m.machine.name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(state); kernel \(m.machine.kernel ?? "?") (\(m.machine.kernelGiven == true ? "given" : "the distribution's"): \(m.machine.kernelImage ?? s.kernelImage)); role \(m.machine.mptcp ? "MPTCP" : "plain")"
                  + "\(m.mptcpEnabled.map { " (net.mptcp.enabled=\($0))" } ?? ""); ssh root@127.0.0.1:\(m.machine.sshPort); "
                  + "underlay \(m.machine.underlay) on \(m.machine.underlayInterface ?? "?") mtu \(m.underlayMTU ?? "?"); pid \(m.machine.pid)")
        }
        if !healthy { throw ExitCode(1) }
    }
}

struct VMSSH: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ssh", abstract: "Open a shell in a VM, or run one command there.")
    @Argument(help: "The VM's host name (mptcp-vm or plain-vm for the built-in pair).") var name: String
    @Argument(parsing: .postTerminator, help: "A command (default: a shell).") var command: [String] = []

    func run() throws {
        do {
            let argv = try LocalVMs().sshCommand(name, command)
            var cargs = argv.map { strdup($0) }
            cargs.append(nil)
            execvp("ssh", &cargs)
            throw LabError("cannot run ssh: \(String(cString: strerror(errno)))", fix: "apt-get install openssh-client")
        } catch { throw fail(error) }
    }
}
