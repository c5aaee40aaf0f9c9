import Foundation
import Netlink
import Planning

/// The built-in pair of VMs: two virtme-ng guests of the distribution's kernel (GRE, netem and
/// MPTCP inside), this machine's file system visible read-only in each, joined by a qemu socket
/// network (the underlay), each reached over ssh on the loopback. `up` leaves an inventory that
/// binds the host names `mptcp-vm` and `plain-vm` to them, the names the example topologies use.
public struct VMPair: Sendable {
    public struct Machine: Codable, Sendable {
        /// Host name in topologies: mptcp-vm or plain-vm.
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
        public var kernel: String?
    }

    public struct State: Codable, Sendable {
        public var machines: [Machine]
        public var underlayPort: Int
        public var kernelImage: String
        public var accelerator: String
        public var bootSeconds: Double?
        public var started: Date
    }

    public let directory: String
    public init(directory: String = VMPair.defaultDirectory) { self.directory = directory }

    public static var defaultDirectory: String { ProcessInfo.processInfo.environment["PATHBED_VM_DIR"] ?? "/run/pathbed/vm" }
    public var statePath: String { directory + "/pair.json" }
    public var inventoryPath: String { directory + "/inventory.json" }
    /// The key virtme-ng makes and puts into its guests.
    static var identity: String { NSHomeDirectory() + "/.cache/virtme-ng/.ssh/id_virtme" }
    static let underlayNetwork = "192.168.56"
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

    /// The newest distribution kernel in /boot whose modules are installed and that has GRE,
    /// netem and MPTCP (PATHBED_VM_KERNEL names one).
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
            let needs = ["CONFIG_NET_IPGRE=", "CONFIG_NET_SCH_NETEM=", "CONFIG_MPTCP=y"]
            if config.isEmpty || needs.allSatisfy({ n in config.split(separator: "\n").contains { $0.hasPrefix(n) && !$0.hasSuffix("=n") } }) {
                usable.append(("/boot/\(image)", release))
            }
        }
        guard let best = usable.sorted(by: { $0.1.compare($1.1, options: .numeric) == .orderedAscending }).last else {
            throw LabError("no kernel for the VMs: /boot has no vmlinuz-* with its modules in /lib/modules and GRE, netem and MPTCP",
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

    /// True when `access` reached a VM of the built-in pair that is no longer running (the pair
    /// is down, or a new pair took other ports): what that VM held went with it.
    public static func isGone(_ access: HostAccess?, pair: VMPair = VMPair()) -> Bool {
        guard let a = access, a.identity == identity, a.ssh == "root@127.0.0.1", let port = a.port else { return false }
        guard let s = pair.load() else { return true }
        return !s.machines.contains { $0.sshPort == port && alive($0.pid) }
    }

    /// The inventory that binds `mptcp-vm` and `plain-vm` to the pair.
    public func inventory(_ s: State) -> Inventory {
        var hosts: [String: HostAccess] = [:]
        for m in s.machines {
            var a = HostAccess(host: m.name, ssh: "root@127.0.0.1")
            a.port = m.sshPort
            a.identity = Self.identity
            // A login costs seconds under software emulation: keep each guest's connection for 10 minutes.
            a.sshOptions = Self.sshOptions + ["-o", "ControlPersist=600"]
            a.pathbed = "self"  // the guests see this machine's file system, this binary included
            hosts[m.name] = a
        }
        return Inventory(hosts: hosts)
    }

    func sshArgv(_ m: Machine, _ command: String) -> [String] {
        ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-p", String(m.sshPort), "-i", Self.identity, "-o", "IdentitiesOnly=yes"]
            + Self.sshOptions + ["root@127.0.0.1", command]
    }

    /// Runs a shell command in a guest; its stdout and exit code.
    func ssh(_ m: Machine, _ command: String, timeout: Double = 30) -> (Int32, String) {
        var out = Data()
        let code = (try? CommandRunner.run(sshArgv(m, command), in: nil, timeout: timeout) { stream, d in if stream == .stdout { out.append(d) } }) ?? 255
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

    /// Boots the pair, or finds it running. Leaves nothing behind when it fails. A boot that
    /// times out is tried once more (software emulation on a loaded machine is slow to start).
    public func up(_ options: Options = Options(), progress: (String) -> Void) throws -> State {
        do { return try boot(options, progress: progress) } catch let e as BootTimeout {
            progress("\(e.error.message); trying once more")
            for m in ["mptcp-vm", "plain-vm"] { rename("\(directory)/\(m).log", "\(directory)/\(m).log.1") }
            do { return try boot(options, progress: progress) } catch let again as BootTimeout { throw again.error }
        }
    }

    struct BootTimeout: Error { var error: LabError }

    func checkInterrupt() throws(LabError) {
        let s = Interrupts.signal
        if s != 0 { throw LabError("interrupted (signal \(s)) while the VMs booted; both were stopped") }
    }

    func boot(_ options: Options, progress: (String) -> Void) throws -> State {
        if let s = load() {
            if s.machines.allSatisfy({ Self.alive($0.pid) }) { return s }
            progress("the pair in \(directory) is half gone; removing what is left first")
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
        let kernel = try Self.findKernel()
        try PrivateDirectory.prepare(directory)
        var ports: [Int] = []
        while ports.count < 3 {
            let p = try Self.freePort()
            if !ports.contains(p) { ports.append(p) }
        }
        let underlayPort = ports[0]
        var machines: [Machine] = []
        for (i, (name, mptcp)) in [("mptcp-vm", true), ("plain-vm", false)].enumerated() {
            machines.append(Machine(name: name, mptcp: mptcp, sshPort: ports[1 + i], mac: String(format: "52:54:00:5b:00:%02x", 10 + i),
                                    underlay: "\(Self.underlayNetwork).\(10 + i)", pid: 0, log: "\(directory)/\(name).log"))
        }
        var state = State(machines: machines, underlayPort: underlayPort, kernelImage: kernel.image, accelerator: options.accelerator, started: Date())
        let start = monotonicNanoseconds()
        func elapsed() -> Double { Double(monotonicNanoseconds() - start) / 1e9 }
        do {
            for i in state.machines.indices {
                let m = state.machines[i]
                let netdev = i == 0 ? "listen=127.0.0.1:\(underlayPort)" : "connect=127.0.0.1:\(underlayPort)"
                var argv = [vng, "--run", kernel.image, "--disable-microvm", "--name", "pathbed-\(m.name)",
                            "--memory", "\(options.memoryMiB)M", "--cpus", String(options.cpus),
                            "--ssh", String(m.sshPort), "--ssh-tcp",
                            "--qemu-opts=-netdev socket,id=underlay,\(netdev) -device virtio-net-pci,netdev=underlay,mac=\(m.mac)",
                            "--verbose", "--exec", Self.guestScript(m)]
                if options.accelerator != "kvm" { argv.insert("--disable-kvm", at: 3) }
                state.machines[i].pid = try Self.launch(argv, log: m.log, pathPrefix: URL(fileURLWithPath: vng).deletingLastPathComponent().path)
                try save(state)
                progress("\(m.name): booting \(kernel.release) (\(options.accelerator == "kvm" ? "KVM" : "software emulation"), \(options.memoryMiB) MiB, ssh on 127.0.0.1:\(m.sshPort))")
                if i == 0 { try waitForListener(port: underlayPort, machine: state.machines[0], timeout: 60) }
            }
            var lastNote = 0.0
            var ready = Set<String>()
            while ready.count < state.machines.count {
                for m in state.machines where !ready.contains(m.name) {
                    guard Self.alive(m.pid) else { throw LabError("\(m.name) stopped while booting: \(Self.tail(m.log))", fix: "its log: \(m.log)") }
                    if ssh(m, "true", timeout: 10).0 == 0 { ready.insert(m.name); progress("\(m.name): answers over ssh after \(Int(elapsed())) s") }
                }
                if ready.count == state.machines.count { break }
                try checkInterrupt()
                if elapsed() > options.bootTimeout {
                    throw BootTimeout(error: LabError("the VMs did not answer over ssh within \(Int(options.bootTimeout)) s (\(state.machines.filter { !ready.contains($0.name) }.map(\.name).joined(separator: ", ")))",
                                   fix: "see their logs in \(directory); under software emulation a loaded machine boots slowly: --timeout gives more time"))
                }
                if elapsed() - lastNote >= 15 { lastNote = elapsed(); progress("waiting for the VMs to boot (\(Int(elapsed())) s)") }
                Thread.sleep(forTimeInterval: 2)
            }
            // The underlay: the NIC with our MAC, addressed; MTU left at 1500 (a lab raises it, `down`
            // puts it back). Root's shell in the guest (its own /etc) becomes sh: bash would read
            // this machine's ~/.bashrc at every ssh command, seconds under software emulation. The
            // pathbed binary is read once now, and the modules labs use are loaded, so that the
            // first `up` does not wait for them.
            for i in state.machines.indices {
                let m = state.machines[i]
                let (code, out) = ssh(m, """
                    set -e; dev=$(grep -l '\(m.mac)' /sys/class/net/*/address | cut -d/ -f5); test -n "$dev"
                    sed -i 's|^root:\\(.*\\):/bin/bash$|root:\\1:/bin/sh|' /etc/passwd
                    ip link set "$dev" up; ip addr replace \(m.underlay)/24 dev "$dev"
                    \(m.mptcp ? "" : "sysctl -qw net.mptcp.enabled=0")
                    cat '\(HostAccess.selfPath)' > /dev/null 2>&1 || true
                    modprobe -a ip_gre sch_netem sch_htb sch_tbf bridge veth 2>/dev/null || true
                    echo "$dev $(uname -r)"
                    """)
                let parts = out.split(separator: "\n").last?.split(separator: " ").map(String.init) ?? []
                guard code == 0, parts.count == 2 else { throw LabError("\(m.name): could not set up its underlay interface (\(m.mac)): exit \(code) \(out)") }
                state.machines[i].underlayInterface = parts[0]
                state.machines[i].kernel = parts[1]
            }
            let (code, out) = ssh(state.machines[0], "ping -c 2 -W 2 -i 0.3 \(state.machines[1].underlay)")
            guard code == 0 else { throw LabError("the underlay between the VMs does not carry packets: \(out)", fix: "see the logs in \(directory)") }
            state.bootSeconds = elapsed()
            try save(state)
            let inv = inventory(state)
            try inv.write(to: inventoryPath)
            // Open the shared ssh connection each lab command will use (a login costs seconds here).
            let control = PrivateDirectory.sshControl
            mkdir(control, 0o700)
            for m in state.machines {
                guard let a = inv.hosts[m.name] else { continue }
                let argv = a.agentCommand(controlDirectory: control).prefix { $0 != "--" } + ["true"]
                _ = try? CommandRunner.run(Array(argv), in: nil, timeout: 30) { _, _ in }
            }
        } catch {
            _ = down()
            throw error
        }
        return state
    }

    /// What each guest runs once booted, and for as long as it lives. virtme-ng configures its
    /// user-mode NIC (the one ssh comes in through) by DHCP, which udev can defeat by renaming
    /// the NIC at the same moment: so the script sets the address slirp always gives
    /// (10.0.2.15/24, gateway 10.0.2.2) on that NIC itself, and addresses the underlay NIC (found
    /// by its MAC). Kept short: it travels on the kernel's command line.
    static func guestScript(_ m: Machine) -> String {
        "for d in /sys/class/net/e*; do n=${d##*/}; ip link set $n up; if grep -q \(m.mac) $d/address; "
            + "then ip addr replace \(m.underlay)/24 dev $n; else ip addr replace 10.0.2.15/24 dev $n; ip route replace default via 10.0.2.2; fi; done; "
            + (m.mptcp ? "" : "sysctl -qw net.mptcp.enabled=0; ")
            + "exec sleep infinity"
    }

    static func onPath(_ tool: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
    }

    static func freePort() throws(LabError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
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

    /// Waits until qemu listens on the underlay port (checked in /proc/net/tcp: connecting would take the peer's place).
    func waitForListener(port: Int, machine: Machine, timeout: Double) throws(LabError) {
        let hex = String(format: ":%04X", port)
        let deadline = monotonicNanoseconds() + UInt64(timeout * 1e9)
        while monotonicNanoseconds() < deadline {
            let table = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? ""
            if table.split(separator: "\n").contains(where: { line in
                let f = line.split(separator: " ")
                return f.count > 3 && f[1].hasSuffix(hex) && f[3] == "0A"
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

    /// Stops both VMs (their whole process groups, and any qemu of the pair left over), removes
    /// the state and the inventory. Works whatever state the pair is in; returns what it stopped.
    public func down() -> [String] {
        var stopped: [String] = []
        let state = load()
        var groups = state?.machines.map(\.pid).filter { $0 > 0 } ?? []
        // A qemu of the pair whose group is unknown (a state file lost): found by its name.
        for pid in Self.pairProcesses() where !groups.contains(pid) { groups.append(pid) }
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
        for m in state?.machines ?? [] where m.pid > 0 { stopped.append(m.name) }
        unlink(statePath); unlink(inventoryPath)
        return stopped
    }

    /// Processes (qemu and virtme-ng) of a pair, found by the names the pair gives its VMs.
    static func pairProcesses() -> [Int32] {
        processes { argv in argv.contains { $0 == "pathbed-mptcp-vm" || $0 == "pathbed-plain-vm" } }
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
            let running = Self.alive(m.pid)
            guard running else { return MachineStatus(machine: m, running: false, answers: false) }
            let (code, out) = ssh(m, "cat /sys/class/net/\(m.underlayInterface ?? "lo")/mtu /proc/sys/net/mptcp/enabled", timeout: 15)
            let lines = out.split(separator: "\n").map(String.init)
            return MachineStatus(machine: m, running: true, answers: code == 0, underlayMTU: lines.first, mptcpEnabled: lines.count > 1 ? lines[1] : nil)
        })
    }

    /// ssh to a guest: the arguments for an interactive session or one command.
    public func sshCommand(_ name: String, _ command: [String]) throws(LabError) -> [String] {
        guard let s = load(), let m = s.machines.first(where: { $0.name == name }) else {
            throw LabError(load() == nil ? "the VM pair is not up" : "no VM named '\(name)' (mptcp-vm or plain-vm)", fix: "pathbed vm up")
        }
        return ["ssh", "-p", String(m.sshPort), "-i", Self.identity, "-o", "IdentitiesOnly=yes"] + Self.sshOptions
            + (command.isEmpty ? ["-t", "root@127.0.0.1", "bash", "-l"] : ["root@127.0.0.1"] + command)
    }
}
