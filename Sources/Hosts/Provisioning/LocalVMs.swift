import Foundation
import Netlink
import Planning
import TopologyModel

/// Local VMs for a lab's hosts: virtme-ng guests, each of its own kernel (the distribution's by
/// default, an image file or a kernel build tree), this machine's file system visible read-only
/// in each, joined by one underlay (two VMs: a qemu socket between them; three or more: a qemu
/// multicast socket on the loopback, one layer-2 segment), each reached over ssh on the loopback.
/// Without a file it boots the built-in pair, `mptcp-vm` and `plain-vm` (the names the example
/// topologies use); with one, a VM per host that has `vm:`. `up` leaves an inventory that binds
/// the host names to the VMs. One set of VMs runs at a time.
public struct LocalVMs: Sendable {
    /// What to boot for one host.
    public struct Spec: Sendable, Equatable {
        public var name: String
        public var mptcp: Bool
        /// Its IPv4 address on the underlay (all of one /24).
        public var underlay: String
        public var kernel: VMSettings.Kernel
        public var memoryMiB: Int
        public var cpus: Int
        public init(name: String, mptcp: Bool, underlay: String, kernel: VMSettings.Kernel = .distribution, memoryMiB: Int = 1024, cpus: Int = 1) {
            self.name = name; self.mptcp = mptcp; self.underlay = underlay; self.kernel = kernel; self.memoryMiB = memoryMiB; self.cpus = cpus
        }
    }

    public struct Machine: Codable, Sendable {
        /// Host name in topologies (mptcp-vm, plain-vm for the built-in pair).
        public var name: String
        /// Declared role: MPTCP on, or a plain host (MPTCP off in its root namespace too).
        public var mptcp: Bool
        public var sshPort: Int
        public var mac: String
        public var underlay: String
        public var underlayInterface: String?
        /// The virtme-ng process; it leads the process group that holds its qemu.
        public var pid: Int32
        public var log: String
        /// The release it runs (`uname -r` in the guest).
        public var kernel: String?
        /// The image or build tree it booted.
        public var kernelImage: String?
        /// Whether the file gave it (`kernel: PATH`) rather than the distribution's default.
        public var kernelGiven: Bool?
        public var memoryMiB: Int?
        public var cpus: Int?
    }

    public struct State: Codable, Sendable {
        public var machines: [Machine]
        /// The qemu socket port of the underlay: TCP between two VMs, UDP of the multicast group.
        public var underlayPort: Int
        /// The multicast group of an underlay of three or more VMs.
        public var underlayGroup: String?
        /// The first machine's image (each machine's is in `machines`).
        public var kernelImage: String
        public var accelerator: String
        public var bootSeconds: Double?
        public var started: Date
        /// The topology they were booted for; nil for the built-in pair.
        public var file: String?
    }

    public let directory: String
    public init(directory: String = LocalVMs.defaultDirectory) { self.directory = directory }

    public static var defaultDirectory: String { ProcessInfo.processInfo.environment["PATHBED_VM_DIR"] ?? "/run/pathbed/vm" }
    public var statePath: String { directory + "/vms.json" }
    public var inventoryPath: String { directory + "/inventory.json" }
    /// The key virtme-ng makes and puts into its guests.
    static var identity: String { NSHomeDirectory() + "/.cache/virtme-ng/.ssh/id_virtme" }
    static let underlayNetwork = "192.168.56"
    /// The most VMs one `vm up` boots (each takes a CPU thread and its memory).
    public static let maximumVMs = 16
    static let sshOptions = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]

    // MARK: Tools

    /// virtme-ng's `vng`: PATHBED_VNG, then PATH, then the virtual environment scripts/setup makes.
    public static func findVNG() -> String? {
        let env = ProcessInfo.processInfo.environment
        if let v = env["PATHBED_VNG"] { return FileManager.default.isExecutableFile(atPath: v) ? v : nil }
        for dir in (env["PATH"] ?? "").split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/vng") { return "\(dir)/vng" }
        let venv = (env["XDG_DATA_HOME"] ?? NSHomeDirectory() + "/.local/share") + "/pathbed/venv/bin/vng"
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    /// The built-in pair: mptcp-vm (192.168.56.10) and plain-vm (.11, MPTCP off).
    public static func pair(memoryMiB: Int = 1024, cpus: Int = 1) -> [Spec] {
        [Spec(name: "mptcp-vm", mptcp: true, underlay: "\(underlayNetwork).10", memoryMiB: memoryMiB, cpus: cpus),
         Spec(name: "plain-vm", mptcp: false, underlay: "\(underlayNetwork).11", memoryMiB: memoryMiB, cpus: cpus)]
    }

    /// A VM for each host of `t` that has `vm:`; their underlay addresses must share one /24 (one
    /// segment joins them all). Checked before anything boots.
    public static func specs(for t: Topology) throws(LabError) -> [Spec] {
        let hosts = t.hosts.filter { $0.vm != nil }
        guard !hosts.isEmpty else {
            throw LabError("\(t.file) gives no host a `vm:`: there is nothing to boot",
                           fix: "add `vm: {}` to each host to boot as a local VM (docs/vms.md), or run `pathbed vm up` without a file for the built-in pair")
        }
        guard hosts.count <= maximumVMs else {
            throw LabError("\(t.file) gives \(hosts.count) hosts a `vm:`; at most \(maximumVMs) VMs boot on one machine", fix: "place some hosts on machines of their own (an inventory, docs/agent.md)")
        }
        var specs: [Spec] = []
        var used: Set<String> = []
        // Hosts without `underlay:` get the next free address from .10 of the first one's /24.
        let network = hosts.lazy.compactMap(\.underlay).first { $0.family == .ipv4 }
            .map { $0.description.split(separator: ".").prefix(3).joined(separator: ".") } ?? underlayNetwork
        let given = Set(hosts.compactMap { $0.underlay?.description })
        var next = 10
        for h in hosts {
            let vm = h.vm!
            let underlay: String
            if let u = h.underlay {
                guard u.family == .ipv4 else { throw LabError("\(h.location): host '\(h.name)': a VM's underlay address must be IPv4, not \(u)") }
                underlay = u.description
            } else {
                while given.contains("\(network).\(next)") || used.contains("\(network).\(next)") { next += 1 }
                guard next < 255 else { throw LabError("\(h.location): host '\(h.name)': no address left in \(network).0/24 for its underlay", fix: "give it `underlay:`") }
                underlay = "\(network).\(next)"
            }
            guard used.insert(underlay).inserted else { throw LabError("\(h.location): host '\(h.name)' has the underlay address \(underlay) of another VM", fix: "give each host its own `underlay:`") }
            if case let .path(p) = vm.kernel {
                var isDirectory: ObjCBool = false
                let at = vm.kernelLocation.map { "\($0): " } ?? ""
                guard FileManager.default.fileExists(atPath: p, isDirectory: &isDirectory) else {
                    throw LabError("\(at)host '\(h.name)': the kernel \(p) does not exist", fix: "give a kernel image (bzImage, vmlinuz) or a built kernel tree; relative paths are taken from the topology's directory")
                }
                if isDirectory.boolValue, !FileManager.default.fileExists(atPath: p + "/arch/x86/boot/bzImage") {
                    throw LabError("\(at)host '\(h.name)': \(p) is a directory but not a built kernel tree (no arch/x86/boot/bzImage)",
                                   fix: "build it first (docs/vms.md: make olddefconfig && make -j$(nproc) bzImage modules), or give the image file")
                }
            }
            specs.append(Spec(name: h.name, mptcp: h.mptcp, underlay: underlay, kernel: vm.kernel, memoryMiB: vm.memoryMiB, cpus: vm.cpus))
        }
        let prefixes = Set(specs.map { $0.underlay.split(separator: ".").prefix(3).joined(separator: ".") })
        if prefixes.count > 1 {
            throw LabError("the VMs' underlay addresses are not in one /24 (\(specs.map { "\($0.name) \($0.underlay)" }.joined(separator: ", "))): one segment joins them",
                           fix: "give the hosts' `underlay:` addresses of one /24, e.g. \(underlayNetwork).10, .11, .12")
        }
        return specs
    }

    /// The newest distribution kernel in /boot whose modules are installed and that has GRE,
    /// VXLAN, netem and MPTCP (PATHBED_VM_KERNEL names one).
    public static func findKernel() throws(LabError) -> (image: String, release: String) {
        if let k = ProcessInfo.processInfo.environment["PATHBED_VM_KERNEL"] {
            guard FileManager.default.fileExists(atPath: k) else { throw LabError("PATHBED_VM_KERNEL=\(k) does not exist") }
            return (k, URL(fileURLWithPath: k).lastPathComponent.replacingOccurrences(of: "vmlinuz-", with: ""))
        }
        let images = ((try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []).filter { $0.hasPrefix("vmlinuz-") }
        var usable: [(String, String)] = []
        for image in images {
            let release = String(image.dropFirst("vmlinuz-".count))
            guard FileManager.default.fileExists(atPath: "/lib/modules/\(release)/modules.dep") else { continue }
            let config = (try? String(contentsOfFile: "/boot/config-\(release)", encoding: .utf8)) ?? ""
            let needs = ["CONFIG_NET_IPGRE=", "CONFIG_VXLAN=", "CONFIG_NET_SCH_NETEM=", "CONFIG_MPTCP=y"]
            if config.isEmpty || needs.allSatisfy({ n in config.split(separator: "\n").contains { $0.hasPrefix(n) && !$0.hasSuffix("=n") } }) {
                usable.append(("/boot/\(image)", release))
            }
        }
        guard let best = usable.sorted(by: { $0.1.compare($1.1, options: .numeric) == .orderedAscending }).last else {
            throw LabError("no kernel for the VMs: /boot has no vmlinuz-* with its modules in /lib/modules and GRE, VXLAN, netem and MPTCP",
                           fix: "install Debian's kernel package (apt-get install linux-image-amd64; scripts/setup does), or set PATHBED_VM_KERNEL")
        }
        return best
    }

    // MARK: State

    public func load() -> State? {
        guard let data = FileManager.default.contents(atPath: statePath) else { return nil }
        let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601
        return try? d.decode(State.self, from: data)
    }

    func save(_ s: State) throws(LabError) {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]; e.dateEncodingStrategy = .iso8601
        do { try e.encode(s).write(to: URL(fileURLWithPath: statePath), options: .atomic) } catch {
            throw LabError("cannot write \(statePath): \(error)")
        }
    }

    static func alive(_ pid: Int32) -> Bool { pid > 0 && kill(pid, 0) == 0 && !ProcessStopper.isZombie(pid) }

    /// The machine's own virtme-ng (or its qemu) still runs under its recorded pid: alive, and
    /// named `pathbed-NAME` on its command line. A pid the state file kept from an earlier boot,
    /// or one the kernel gave to another program since, is not the VM and is never signalled.
    static func running(_ m: Machine) -> Bool {
        alive(m.pid) && cmdline(m.pid).contains("pathbed-\(m.name)")
    }

    /// The VMs' lock (`vms.lock` in their directory): one `vm up` or `vm down` at a time;
    /// another waits (at most `wait` seconds).
    public func exclusive(wait: Double, progress: (String) -> Void) throws(LabError) -> FileLock {
        try PrivateDirectory.prepare(directory, variable: "PATHBED_VM_DIR")
        let path = directory + "/vms.lock"
        return try FileLock(path: path, wait: wait, waiting: progress) {
            LabError(Interrupts.signal != 0 ? "interrupted while waiting for another `pathbed vm` command" : "another `pathbed vm` command held \(path) for over \(Int(wait)) s",
                     fix: "wait for it to finish, or stop it")
        }
    }

    /// The process groups of a state's VMs that `down` signals: only those still running.
    static func groupsToStop(_ state: State?) -> [Int32] { state?.machines.filter(running).map(\.pid) ?? [] }

    /// The ssh port on this machine of a VM `pathbed vm up` booted, when `access` reaches one.
    static func localPort(_ access: HostAccess?) -> Int? {
        guard let a = access, a.identity == identity, a.ssh == "root@127.0.0.1" else { return nil }
        return a.port
    }

    /// True when `access` reaches a VM `pathbed vm up` booted under software emulation (no KVM).
    public static func runsEmulated(_ access: HostAccess) -> Bool {
        guard let port = localPort(access), let s = LocalVMs().load(), s.machines.contains(where: { $0.sshPort == port }) else { return false }
        return s.accelerator != "kvm"
    }

    /// True when `access` reached a local VM that is no longer running (the VMs are down, or
    /// new ones took other ports): what that VM held went with it.
    public static func isGone(_ access: HostAccess?, pair: LocalVMs = LocalVMs()) -> Bool {
        guard let port = localPort(access) else { return false }
        guard let s = pair.load() else { return true }
        return !s.machines.contains { $0.sshPort == port && running($0) }
    }

    /// The inventory that binds the hosts' names to the VMs.
    public func inventory(_ s: State) -> Inventory {
        var hosts: [String: HostAccess] = [:]
        for m in s.machines {
            var a = HostAccess(host: m.name, ssh: "root@127.0.0.1")
            a.port = m.sshPort
            a.identity = Self.identity
            // A login costs seconds under software emulation: keep each guest's connection for 10 minutes.
            // ssh's keepalives wait 60 s (12 x 5) rather than 20: a guest busy with its network
            // stack can starve its sshd that long, and a qemu that died closes the socket at once.
            a.sshOptions = Self.sshOptions + ["-o", "ControlPersist=600", "-o", "ServerAliveCountMax=12"]
            a.pathbed = "self"  // the guests see this machine's file system, this binary included
            hosts[m.name] = a
        }
        return Inventory(hosts: hosts)
    }

    func sshArgv(_ m: Machine, _ command: String) -> [String] {
        ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-p", String(m.sshPort), "-i", Self.identity, "-o", "IdentitiesOnly=yes"]
            + Self.sshOptions + ["root@127.0.0.1", command]
    }

    /// Runs a shell command in a guest (through `via`, an ssh command line without its command,
    /// when given); its stdout and exit code.
    func ssh(_ m: Machine, via: [String] = [], _ command: String, timeout: Double = 30) -> (Int32, String) {
        var out = Data()
        let argv = via.isEmpty ? sshArgv(m, command) : via + [command]
        let code = (try? CommandRunner.run(argv, in: nil, timeout: timeout, stop: { Interrupts.signal != 0 }) { stream, d in if stream == .stdout { out.append(d) } }) ?? 255
        return (code, String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    // MARK: Up

    public struct Options: Sendable {
        public var memoryMiB = 1024
        public var cpus = 1
        /// Seconds to wait for both guests to answer over ssh.
        public var bootTimeout = 300.0
        /// "tcg" (software emulation) or "kvm".
        public var accelerator = "tcg"
        public init() {}
    }

    /// Boots the VMs (the built-in pair when `specs` is nil), or finds them running. Leaves
    /// nothing behind when it fails. A boot that times out is tried once more (software emulation
    /// on a loaded machine is slow to start). Other VMs running are refused: `down` first.
    public func up(_ options: Options = Options(), specs: [Spec]? = nil, file: String? = nil, progress: (String) -> Void) throws -> State {
        let wanted = specs ?? Self.pair(memoryMiB: options.memoryMiB, cpus: options.cpus)
        // Only a boot that finished (its time recorded) is found running: one killed halfway left
        // its VMs without their set-up and inventory, and is booted again (the lock, taken by the
        // caller, keeps a boot under way from being taken for that).
        if let s = load(), s.bootSeconds != nil, s.machines.allSatisfy({ Self.running($0) }) {
            let running = s.machines.map(\.name).sorted(), asked = wanted.map(\.name).sorted()
            guard running == asked, s.file == file else {
                throw LabError("other VMs are up (\(running.joined(separator: ", "))\(s.file.map { " for \($0)" } ?? ", the built-in pair")); one set runs at a time",
                               fix: "pathbed vm down, then pathbed vm up \(file ?? "")")
            }
            return s
        }
        do { return try boot(options, wanted, file: file, progress: progress) } catch let e as BootTimeout {
            progress("\(e.error.message); trying once more")
            for m in wanted { rename("\(directory)/\(m.name).log", "\(directory)/\(m.name).log.1") }
            do { return try boot(options, wanted, file: file, progress: progress) } catch let again as BootTimeout { throw again.error }
        }
    }

    struct BootTimeout: Error { var error: LabError }

    func checkInterrupt() throws(LabError) {
        let s = Interrupts.signal
        if s != 0 { throw LabError("interrupted (signal \(s)) while the VMs booted; all were stopped") }
    }

    func boot(_ options: Options, _ specs: [Spec], file: String?, progress: (String) -> Void) throws -> State {
        if load() != nil {
            progress("the VMs in \(directory) are half gone; removing what is left first")
            _ = down()
        }
        guard let vng = Self.findVNG() else {
            throw LabError("virtme-ng (`vng`) is not installed", fix: "run scripts/setup (it installs virtme-ng in a virtual environment), or set PATHBED_VNG")
        }
        for (tool, package) in [("qemu-system-x86_64", "qemu-system-x86"), ("ssh", "openssh-client"), ("ssh-keygen", "openssh-client")] where !Self.onPath(tool) {
            throw LabError("\(tool) is not installed", fix: "apt-get install \(package) (scripts/setup does)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else {
            throw LabError("/usr/sbin/sshd is missing: the guests run this machine's sshd", fix: "apt-get install openssh-server (scripts/setup does)")
        }
        // Before any VM starts, with its parents: the logins' shared connections need it (/run is
        // empty after a boot: a bare mkdir failed there, every login with it, and a fresh
        // machine's first `vm up` waited forever).
        try PrivateDirectory.prepareSSHControl(PrivateDirectory.sshControl)
        var distribution: (image: String, release: String)?
        var images: [String] = []
        for s in specs {
            switch s.kernel {
            case .distribution:
                if distribution == nil { distribution = try Self.findKernel() }
                images.append(distribution!.image)
            case let .path(p): images.append(p)
            }
        }
        try PrivateDirectory.prepare(directory, variable: "PATHBED_VM_DIR")
        // Two VMs: a TCP socket between them (no frame goes back to its sender). Three or more: a
        // multicast group on the loopback, of a random administratively scoped address.
        let multicast = specs.count > 2
        var ports: [Int] = []
        while ports.count < specs.count + 1 {
            let p = try Self.freePort(udp: multicast && ports.isEmpty)
            if !ports.contains(p) { ports.append(p) }
        }
        let underlayPort = ports[0]
        let group = multicast ? "239.255.\(UInt8.random(in: 1...254)).\(UInt8.random(in: 1...254))" : nil
        var machines: [Machine] = []
        for (i, spec) in specs.enumerated() {
            var m = Machine(name: spec.name, mptcp: spec.mptcp, sshPort: ports[1 + i], mac: String(format: "52:54:00:5b:%02x:%02x", (10 + i) >> 8, (10 + i) & 0xFF),
                            underlay: spec.underlay, pid: 0, log: "\(directory)/\(spec.name).log")
            m.kernelImage = images[i]; m.memoryMiB = spec.memoryMiB; m.cpus = spec.cpus
            if case .path = spec.kernel { m.kernelGiven = true } else { m.kernelGiven = false }
            machines.append(m)
        }
        var state = State(machines: machines, underlayPort: underlayPort, underlayGroup: group, kernelImage: images[0], accelerator: options.accelerator,
                          started: Date(), file: file)
        let start = monotonicNanoseconds()
        func elapsed() -> Double { Double(monotonicNanoseconds() - start) / 1e9 }
        do {
            for i in state.machines.indices {
                let m = state.machines[i]
                let netdev = group.map { "mcast=\($0):\(underlayPort),localaddr=127.0.0.1" } ?? (i == 0 ? "listen=127.0.0.1:\(underlayPort)" : "connect=127.0.0.1:\(underlayPort)")
                var argv = [vng, "--run", images[i], "--disable-microvm", "--name", "pathbed-\(m.name)",
                            "--memory", "\(specs[i].memoryMiB)M", "--cpus", String(specs[i].cpus),
                            "--ssh", String(m.sshPort), "--ssh-tcp",
                            "--qemu-opts=-netdev socket,id=underlay,\(netdev) -device virtio-net-pci,netdev=underlay,mac=\(m.mac)",
                            "--append", "modprobe.blacklist=" + Self.unusedModules.joined(separator: ","),
                            "--verbose", "--exec", Self.guestScript(m)]
                if options.accelerator != "kvm" { argv.insert("--disable-kvm", at: 3) }
                state.machines[i].pid = try Self.launch(argv, log: m.log, pathPrefix: URL(fileURLWithPath: vng).deletingLastPathComponent().path)
                try save(state)
                let what: String
                switch specs[i].kernel {
                case .distribution: what = distribution!.release
                case let .path(p): what = p
                }
                progress("\(m.name): booting \(what) (\(options.accelerator == "kvm" ? "KVM" : "software emulation"), \(specs[i].memoryMiB) MiB, \(specs[i].cpus) CPU\(specs[i].cpus == 1 ? "" : "s"), ssh on 127.0.0.1:\(m.sshPort))")
                // The first VM's qemu is running before the next starts: the pair's second
                // connects to its socket, and virtme-ng makes its ssh keys, on a fresh machine,
                // before it starts qemu (several making them at once overwrite each other's).
                if i == 0 { try waitForListener(port: underlayPort, machine: state.machines[0], timeout: 60, udp: group != nil) }
            }
            // Each VM is waited for, and then set up, on a thread of its own: under software
            // emulation a guest answers seconds after its neighbour, and one ssh that hangs
            // would hold up the others.
            let booting = BootProgress(count: state.machines.count)
            let machines = state.machines, bootTimeout = options.bootTimeout
            // The setup's login opens the shared connection (ControlMaster) that every lab command
            // to the guest then uses: a login costs seconds under software emulation.
            let inv = inventory(state)
            let control = PrivateDirectory.sshControl  // made before the VMs started
            @Sendable func since() -> Double { Double(monotonicNanoseconds() - start) / 1e9 }
            // A thread per VM (concurrentPerform runs one per CPU: 16 VMs on 2 cores went in waves).
            let workers = machines.indices.map { i in Thread {
                func say(_ text: String) { booting.note(text) }
                func elapsed() -> Double { since() }
                let m = machines[i]
                do {
                    while true {
                        guard Self.alive(m.pid) else { throw LabError("\(m.name) stopped while booting: \(Self.tail(m.log))", fix: "its log: \(m.log)") }
                        // The banner first (costs the guest nothing), then one login given time
                        // to finish: a key exchange cut off at 10 s under load only starts over.
                        if Self.sshBanner(port: m.sshPort) { say("\(m.name): its ssh server answers after \(Int(elapsed())) s"); break }
                        try checkInterrupt()
                        if booting.anyFailed { booting.gaveUp(i); return }
                        if elapsed() > bootTimeout {
                            throw BootTimeout(error: LabError("\(m.name) did not answer over ssh within \(Int(bootTimeout)) s",
                                                              fix: "see its log \(m.log); under software emulation a loaded machine boots slowly: --timeout gives more time"))
                        }
                        Thread.sleep(forTimeInterval: 2)
                    }
                    // The underlay: the NIC with our MAC, addressed (again: the boot script may not
                    // have run yet); MTU left at 1500 (a lab raises it, `down` puts it back). Root's
                    // shell, the binary and the modules are the boot script's (`guestScript`).
                    let login = (inv.hosts[m.name]?.agentCommand(controlDirectory: control) ?? []).prefix { $0 != "--" }
                    let (code, out) = ssh(m, via: Array(login), """
                        set -e; dev=$(grep -l '\(m.mac)' /sys/class/net/*/address | cut -d/ -f5); test -n "$dev"
                        ip link set "$dev" up; ip addr replace \(m.underlay)/24 dev "$dev"
                        \(m.mptcp ? "" : "sysctl -qw net.mptcp.enabled=0")
                        echo "$dev $(uname -r)"
                        """, timeout: 150)
                    let parts = out.split(separator: "\n").last?.split(separator: " ").map(String.init) ?? []
                    guard code == 0, parts.count == 2 else { throw LabError("\(m.name): could not set up its underlay interface (\(m.mac)): exit \(code) \(out)") }
                    booting.done(i, interface: parts[0], kernel: parts[1])
                    say("\(m.name): set up after \(Int(elapsed())) s")
                } catch {
                    booting.fail(i, error)
                }
            } }
            for w in workers { w.start() }
            var lastNote = 0.0
            // Bounded whatever a thread does: its banner wait ends at the boot timeout, its login
            // at 150 s more; past both (and a margin) the wait ends here, and `down` stops them.
            let waitLimit = bootTimeout + 180
            while !booting.allDone {
                for note in booting.takeNotes() { progress(note) }
                if elapsed() - lastNote >= 15 { lastNote = elapsed(); progress("waiting for the VMs to boot (\(Int(elapsed())) s)") }
                try checkInterrupt()
                // One VM failed: the lab cannot have them all; the others' logins are not waited for.
                if booting.anyFailed, let e = booting.first { throw e }
                if elapsed() > waitLimit {
                    throw booting.first ?? LabError("the VMs were not set up within \(Int(waitLimit)) s: \(booting.pending.map { machines[$0].name }.joined(separator: ", ")) still booting",
                                                    fix: "see the logs in \(directory); --timeout gives more time")
                }
                Thread.sleep(forTimeInterval: 0.5)
            }
            for note in booting.takeNotes() { progress(note) }
            if let e = booting.first { throw e }
            for i in state.machines.indices {
                state.machines[i].underlayInterface = booting.interfaces[i]
                state.machines[i].kernel = booting.kernels[i]
            }
            for m in state.machines.dropFirst() {
                let (code, out) = ssh(state.machines[0], "ping -c 2 -W 2 -i 0.3 \(m.underlay)")
                guard code == 0 else { throw LabError("the underlay between \(state.machines[0].name) and \(m.name) does not carry packets: \(out)", fix: "see the logs in \(directory)") }
            }
            state.bootSeconds = elapsed()
            try save(state)
            try inv.write(to: inventoryPath)
        } catch {
            _ = down()
            throw error
        }
        return state
    }

    /// Drivers of the emulated PC's devices a lab never uses (disk controller, CD-ROM, chipset,
    /// watchdog, sound, display, KVM): probing them cost each guest seconds of emulated CPU at
    /// boot, and booting guests share this machine's CPUs.
    static let unusedModules = ["ahci", "libahci", "ata_piix", "ata_generic", "libata", "sr_mod", "cdrom", "sg", "lpc_ich", "i2c_i801",
                                "iTCO_wdt", "iTCO_vendor_support", "kvm", "kvm_amd", "kvm_intel", "powernow_k8", "bochs", "snd_hda_intel",
                                "joydev", "evdev", "pcspkr", "serio_raw", "floppy", "parport_pc", "qemu_fw_cfg"]

    /// What each guest runs once booted, and for as long as it lives. virtme-ng configures its
    /// user-mode NIC (the one ssh comes in through) by DHCP, which udev can defeat by renaming
    /// the NIC at the same moment: so the script sets the address slirp always gives
    /// (10.0.2.15/24, gateway 10.0.2.2) on that NIC itself, and addresses the underlay NIC (found
    /// by its MAC). Kept short: it travels on the kernel's command line.
    static func guestScript(_ m: Machine) -> String {
        "for d in /sys/class/net/e*; do n=${d##*/}; ip link set $n up; if grep -q \(m.mac) $d/address; "
            + "then ip addr replace \(m.underlay)/24 dev $n; else ip addr replace 10.0.2.15/24 dev $n; ip route replace default via 10.0.2.2; fi; done; "
            + (m.mptcp ? "" : "sysctl -qw net.mptcp.enabled=0; ")
            // Root's shell becomes sh before the first login (bash would read this machine's
            // ~/.bashrc at each one), and what labs load is loaded while the guest waits for it.
            + "sed -i 's|^root:\\(.*\\):/bin/bash$|root:\\1:/bin/sh|' /etc/passwd; "
            + "(modprobe -a ip_gre vxlan sch_netem sch_htb sch_tbf bridge veth mptcp_diag; cat \(HostAccess.selfPath) >/dev/null) 2>/dev/null & "
            + "exec sleep infinity"
    }

    /// Whether an ssh server answers on 127.0.0.1:`port` with its banner (qemu accepts the
    /// connection itself and closes it while nothing listens in the guest).
    static func sshBanner(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &a) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
        guard connected else { return false }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buffer, buffer.count)
        return n >= 4 && buffer[0..<4] == [0x53, 0x53, 0x48, 0x2D]  // "SSH-"
    }

    static func onPath(_ tool: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
    }

    static func freePort(udp: Bool = false) throws(LabError) -> Int {
        let fd = socket(AF_INET, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw LabError("cannot find a free port on 127.0.0.1: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// Starts a VM's virtme-ng in a process group of its own, its output into `log`.
    static func launch(_ argv: [String], log: String, pathPrefix: String) throws(LabError) -> Int32 {
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LabError("cannot write \(log): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devnull) }
        // vng runs its helpers (virtme-run) from its own directory.
        let path = pathPrefix + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin")
        let pid = NetworkNamespace.spawnInGroup(-1, ["env", "PATH=\(path)"] + argv, stdin: devnull, stdout: fd, stderr: fd)
        guard pid > 0 else { throw LabError("cannot start \(argv[0]): \(String(cString: strerror(-pid)))") }
        return pid
    }

    /// Waits until qemu listens on the underlay port (checked in /proc/net/tcp: connecting would
    /// take the peer's place), or, with `udp`, has bound the multicast group's port.
    func waitForListener(port: Int, machine: Machine, timeout: Double, udp: Bool = false) throws(LabError) {
        let hex = String(format: ":%04X", port)
        let deadline = monotonicNanoseconds() + UInt64(timeout * 1e9)
        while monotonicNanoseconds() < deadline {
            let table = (try? String(contentsOfFile: udp ? "/proc/net/udp" : "/proc/net/tcp", encoding: .utf8)) ?? ""
            if table.split(separator: "\n").contains(where: { line in
                let f = line.split(separator: " ")
                return f.count > 3 && f[1].hasSuffix(hex) && (udp || f[3] == "0A")
            }) { return }
            guard Self.alive(machine.pid) else { throw LabError("\(machine.name) stopped at start: \(Self.tail(machine.log))", fix: "its log: \(machine.log)") }
            try checkInterrupt()
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw LabError("\(machine.name)'s qemu did not open the underlay socket on port \(port) within \(Int(timeout)) s", fix: "its log: \(machine.log)")
    }

    static func tail(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(3).joined(separator: " | ")
    }

    // MARK: Down

    /// Stops every VM (their whole process groups, and any qemu of ours left over), removes the
    /// state and the inventory. Works whatever state the VMs are in; returns what it stopped.
    public func down() -> [String] {
        var stopped: [String] = []
        let state = load()
        var groups = Self.groupsToStop(state)
        // A qemu of ours whose group is unknown (a state file lost): found by its name.
        for pid in Self.vmProcesses(names: state?.machines.map(\.name) ?? []) where !groups.contains(pid) { groups.append(pid) }
        // The shared ssh connections to the guests (ControlPersist) end first, while they still answer.
        let control = PrivateDirectory.sshControl
        for m in state?.machines ?? [] {
            _ = try? CommandRunner.run(["ssh", "-o", "ControlPath=\(control)/%C", "-p", String(m.sshPort), "-O", "exit", "root@127.0.0.1"],
                                       in: nil, timeout: 5) { _, _ in }
        }
        for g in groups { kill(-g, SIGTERM); kill(g, SIGTERM) }
        let deadline = monotonicNanoseconds() + 5_000_000_000
        while monotonicNanoseconds() < deadline, groups.contains(where: { kill(-$0, 0) == 0 || Self.alive($0) }) { usleep(100_000) }
        for g in groups { kill(-g, SIGKILL); kill(g, SIGKILL) }
        for g in groups { var st: Int32 = 0; _ = waitpid(g, &st, WNOHANG) }
        for m in state?.machines ?? [] where groups.contains(m.pid) { stopped.append(m.name) }
        unlink(statePath); unlink(inventoryPath)
        unlink(directory + "/pair.json")  // the state file of releases before
        return stopped
    }

    /// Processes (qemu and virtme-ng) of our VMs, found by the names we give them: those of
    /// `names`, and the built-in pair's.
    static func vmProcesses(names: [String]) -> [Int32] {
        let ours = Set((names + ["mptcp-vm", "plain-vm"]).map { "pathbed-\($0)" })
        return processes { argv in
            guard let program = argv.first.map({ URL(fileURLWithPath: $0).lastPathComponent }),
                  program.hasPrefix("qemu-system") || program == "vng" || program.hasPrefix("python") || program.hasPrefix("virtme") else { return false }
            return argv.contains { ours.contains($0) }
        }
    }

    static func cmdline(_ pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    static func processes(matching: ([String]) -> Bool) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { $0 != getpid() && matching(cmdline($0)) }
    }

    // MARK: Status

    public struct MachineStatus: Sendable {
        public var machine: Machine
        public var running: Bool
        public var answers: Bool
        public var underlayMTU: String?
        public var mptcpEnabled: String?
    }

    public func status() -> (State, [MachineStatus])? {
        guard let s = load() else { return nil }
        return (s, s.machines.map { m in
            let running = Self.running(m)
            guard running else { return MachineStatus(machine: m, running: false, answers: false) }
            let (code, out) = ssh(m, "cat /sys/class/net/\(m.underlayInterface ?? "lo")/mtu /proc/sys/net/mptcp/enabled", timeout: 15)
            let lines = out.split(separator: "\n").map(String.init)
            return MachineStatus(machine: m, running: true, answers: code == 0, underlayMTU: lines.first, mptcpEnabled: lines.count > 1 ? lines[1] : nil)
        })
    }

    /// ssh to a guest: the arguments for an interactive session or one command.
    public func sshCommand(_ name: String, _ command: [String]) throws(LabError) -> [String] {
        guard let s = load(), let m = s.machines.first(where: { $0.name == name }) else {
            throw LabError(load() == nil ? "no VMs are up" : "no VM named '\(name)' (\(load()!.machines.map(\.name).joined(separator: ", ")))", fix: "pathbed vm up [FILE]")
        }
        return ["ssh", "-p", String(m.sshPort), "-i", Self.identity, "-o", "IdentitiesOnly=yes"] + Self.sshOptions
            + (command.isEmpty ? ["-t", "root@127.0.0.1", "bash", "-l"] : ["root@127.0.0.1"] + command)
    }
}

/// What each VM's boot thread found, or the first error among them.
private final class BootProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error?]
    private var finished: [Bool]
    private(set) var interfaces: [String?]
    private(set) var kernels: [String?]
    private var notes: [String] = []
    func note(_ text: String) { lock.withLock { notes.append(text) } }
    func takeNotes() -> [String] { lock.withLock { defer { notes = [] }; return notes } }
    init(count: Int) { errors = Array(repeating: nil, count: count); finished = Array(repeating: false, count: count); interfaces = errors.map { _ in nil }; kernels = interfaces }
    func done(_ i: Int, interface: String, kernel: String) { lock.withLock { interfaces[i] = interface; kernels[i] = kernel; finished[i] = true } }
    func fail(_ i: Int, _ e: Error) { lock.withLock { errors[i] = e; finished[i] = true } }
    /// Stopped waiting because another VM failed: finished, its error the other's.
    func gaveUp(_ i: Int) { lock.withLock { finished[i] = true } }
    var pending: [Int] { lock.withLock { finished.indices.filter { !finished[$0] } } }
    var anyFailed: Bool { lock.withLock { errors.contains { $0 != nil } } }
    var allDone: Bool { lock.withLock { !finished.contains(false) } }
    /// A timeout only when nothing worse happened (a timeout is tried again; a crash is not).
    var first: Error? {
        lock.withLock {
            let all = errors.compactMap { $0 }
            return all.first { !($0 is LocalVMs.BootTimeout) } ?? all.first
        }
    }
}
