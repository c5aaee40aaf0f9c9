import ArgumentParser
import Engine
import Foundation
import Netlink
import TopologyModel

func fail(_ error: Error) -> ExitCode {
    printError("\(error)")
    return ExitCode(1)
}

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a lab in the kernel, or change a running one to match its file.",
        discussion: """
            Validates the file and checks the kernel first; changes nothing if either fails. A second \
            `up` of the same file changes nothing; `up` of a changed file changes the running lab in place \
            (profiles with `tc qdisc change`, changed nodes rebuilt) and heals namespaces deleted by hand. \
            If a step fails, or Ctrl-C arrives, everything this `up` created is removed.
            """
    )
    @Argument(help: "Topology file.", completion: .file(extensions: ["yaml", "yml"])) var file: String
    @Flag(name: .shortAndLong, help: "Print only errors.") var quiet = false
    @Flag(help: "Print what `up` would change, and change nothing.") var dryRun = false
    @OptionGroup var hosts: HostOptions

    func run() throws {
        let t = try loadTopology(file)
        do {
            let controller = try hosts.controller(for: t, quiet: quiet)
            if !dryRun { try LabController.requireRoot("building a lab", "up \(file)") }
            Interrupts.catchSignals()
            defer { Interrupts.restoreDefaults() }
            let r = try controller.up(t, dryRun: dryRun, progress: { if !quiet { printError("  \($0)") } })
            if r.recovered > 0 { printError("  removed \(r.recovered) namespaces left by an interrupted `up`") }
            if quiet && !dryRun { return }
            switch r.outcome {
            case .built:
                print("lab \(t.name) is up: \(r.namespaces) namespaces, \(r.operations) operations in \(String(format: "%.2f", r.seconds)) s")
                if r.hostSeconds.count > 1 || controller.spansHosts {
                    for h in r.hostSeconds { print("  \(h.host) (\(controller.access[h.host]?.label ?? "this machine")): \(String(format: "%.2f", h.seconds)) s") }
                }
                if r.probes > 0 { print("  MTU plan proven: \(r.probes) don't-fragment probes at the full inner MTU got through every tunnel, both ways") }
                print("  try: pathbed exec \(t.nodes[0].name) -- ip addr    |   pathbed status \(t.name)   |   pathbed down \(t.name)")
            case .unchanged:
                print(dryRun ? "lab \(t.name) is up as \(file) describes it; `up` would change nothing" : "lab \(t.name) is already up as \(file) describes it; nothing to change")
            case .reconciled:
                print("lab \(t.name) changed in place in \(String(format: "%.2f", r.seconds)) s:")
                for c in r.changes { print("  \(c)") }
            case .dryRun:
                print("`up` would (nothing was changed):")
                for c in r.changes { print("  \(c)") }
            }
        } catch { throw fail(error) }
    }
}

/// A lab's name given directly, or through its topology file.
func labName(_ argument: String) throws -> String {
    if argument.hasSuffix(".yaml") || argument.hasSuffix(".yml") || argument.contains("/") { return try loadTopology(argument).name }
    if let problem = LabName.problem(argument) {
        throw LabError(problem, fix: "give a lab's name (`pathbed status` lists them) or its topology file")
    }
    return argument
}

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove everything a lab created.",
        discussion: """
            Takes the lab's name or its topology file. Works after an interrupted or killed `up`. Removes only \
            namespaces named pb.LAB or pb.LAB.NODE whose loopback carries the lab's tag; anything else is left alone.
            """
    )
    @Argument(help: "Lab name or topology file.", completion: .file(extensions: ["yaml", "yml"])) var lab: String
    @Flag(help: "Also wait until the kernel has freed the lab's devices, and say how long that took.") var wait = false

    func run() throws {
        do {
            let name = try labName(lab)
            try LabController.requireRoot("removing a lab", "down \(lab)")
            // With --wait, Ctrl-C ends the wait for the kernel and still removes its probe.
            if wait { Interrupts.catchSignals() }
            let r = try LabController.forJournal(name).down(name, waitForKernel: wait)
            for m in r.restoredMTUs { print("  restored \(m)") }
            for f in r.foreign { printError("warning: \(f) is named like lab \(name)'s but was not made by it (no tag); left alone") }
            if r.removed == 0 {
                print("lab \(name) is not up; nothing to remove")
            } else {
                var line = "lab \(name) is down: removed \(r.removed) namespaces in \(String(format: "%.2f", r.seconds)) s"
                if r.stoppedProcesses > 0 { line += ", stopped \(r.stoppedProcesses) processes" }
                if let k = r.kernelFreeSeconds { line += "; the kernel took \(String(format: "%.2f", k)) s more to free their devices" }
                else { line += " (the kernel frees their devices in the background; --wait measures it)" }
                print(line)
            }
        } catch { throw fail(error) }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show labs, their nodes, links and qdiscs as the kernel reports them, and what disagrees with the journal.")
    @Argument(help: "A lab's name or topology file (default: all).") var lab: String?

    func run() throws {
        do {
            let labs = try lab.map { [try labName($0)] } ?? LabController.forThisMachine().labs()
            if labs.isEmpty { print("no labs are up"); return }
            var unhealthy = false
            for name in labs {
                let controller = LabController.forJournal(name)
                let s = controller.status(name)
                print("lab \(name): \(s.state.rawValue)\(s.file.map { " from \($0)" } ?? ""), \(s.namespaces.count) namespaces")
                for p in s.problems { print("  ! \(p)") }
                for n in s.notes { print("  note: \(n)") }
                if s.state != .up { unhealthy = true }
                let hosts = Set(s.namespaces.map(\.host))
                for ns in s.namespaces {
                    print("  \(ns.name)" + (hosts.count > 1 ? "   (on \(ns.host))" : ""))
                    for i in ns.interfaces ?? [] {
                        print("    \(i.name.padding(toLength: 15, withPad: " ", startingAt: 0)) \(i.kind)\(i.isUp ? " up" : " down") mtu \(i.mtu)\(i.shaping.isEmpty ? "" : "  qdisc \(i.shaping)")")
                    }
                }
            }
            if unhealthy { throw ExitCode(1) }
        } catch let e as ExitCode { throw e } catch { throw fail(error) }
    }
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command inside a node's namespace (as `ip netns exec`), on whichever host the node lives.",
        discussion: """
            Example: pathbed exec client -- ping -c 3 10.0.3.2. On this machine the command gets the terminal; \
            on a remote host it runs through the agent, its output streamed back, its exit code returned, and it \
            is stopped when this command is (Ctrl-C).
            """
    )
    @Option(help: "The lab, when several labs have the node.") var lab: String?
    @Argument(help: "Node name.") var node: String
    @Argument(parsing: .postTerminator, help: "The command and its arguments.") var command: [String] = []

    func validate() throws { if command.isEmpty { throw ValidationError("give a command after --, e.g. pathbed exec \(node) -- ip addr") } }

    func run() throws {
        do {
            let (labName, host, ns) = try LabController.locate(node: node, lab: lab)
            let controller = LabController.forJournal(labName)
            if let access = controller.access[host], !access.isLocal, let e = controller.executors[host] {
                Interrupts.catchSignals()
                defer { Interrupts.restoreDefaults() }
                let code = try e.run(command, in: ns, timeout: nil) { stream, data in
                    data.withUnsafeBytes { _ = write(stream == .stdout ? 1 : 2, $0.baseAddress, $0.count) }
                }
                if code == 127 { printError("error: \(command[0]): command not found in \(ns) on \(host)") }
                throw ExitCode(code)
            }
            try LabController.requireRoot("entering a lab's namespace", "exec \(node) -- ...")
            let fd = try NetworkNamespace.open(ns)
            let pid = NetworkNamespace.spawn(fd, command)
            close(fd)
            guard pid > 0 else { throw LabError("cannot start \(command[0]): \(String(cString: strerror(-pid)))") }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            if code == 127 { printError("error: \(command[0]): command not found in \(ns)") }
            throw ExitCode(code)
        } catch let e as ExitCode { throw e } catch { throw fail(error) }
    }
}

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what each host's kernel and tools support.",
        discussion: """
            Each feature is tried for real in a throwaway namespace (needs root). Given a topology, every host of \
            the lab is checked (remote ones through the agent) with its declared role, and the exit status is 1 \
            if the lab needs something missing, or if nothing could be checked.
            """
    )
    @Argument(help: "A topology to check against (optional).", completion: .file(extensions: ["yaml", "yml"])) var file: String?
    @OptionGroup var hosts: HostOptions

    func run() throws {
        let topology = try file.map(loadTopology)
        guard let t = topology else {
            let caps = CapabilityProbe.run()
            Self.show(caps)
            if caps.isBlind {
                printError("\nerror: not root, so nothing could be tried\n    fix: run as root (sudo pathbed doctor)")
                throw ExitCode(1)
            }
            return
        }
        let plan = Planner.plan(t)
        let controller: LabController
        do { controller = try hosts.controller(for: t, quiet: false) } catch { throw fail(error) }
        var failed = false
        for h in plan.hosts {
            let declared = t.host(named: h.host)
            let access = controller.access[h.host]
            print("host \(h.host) (\(access?.label ?? "this machine")), declared \(declared?.mptcp ?? true ? "MPTCP" : "plain (MPTCP off in its lab namespaces)")")
            guard let e = controller.executors[h.host] else { continue }
            do {
                let info = try e.info()
                print("  kernel \(info.kernel) on \(info.hostname), Pathbed \(info.version)")
            } catch {
                printError("  error: \(error)")
                failed = true
                continue
            }
            let caps = e.capabilities(sysctls: h.sysctlKeys)
            Self.show(caps, indent: "  ")
            var missing = caps.missing(for: h)
            if t.hosts.count > 1, declared?.mptcp ?? false, !caps.has("mptcp"), !missing.contains(where: { $0.name == "mptcp" }) {
                missing.append(.init(name: "mptcp", ok: false, detail: "declared `mptcp: true` but the kernel has none", fix: "boot a kernel with CONFIG_MPTCP, or declare the host `mptcp: false`"))
            }
            if caps.isBlind {
                printError("  error: not root there, so nothing could be tried")
                failed = true
            } else if missing.isEmpty {
                print("  lab \(t.name): everything it needs on \(h.host) is here\n")
            } else {
                printError("  lab \(t.name) needs what is missing on \(h.host):\n" + missing.map { "    - \($0.name): \($0.detail); \($0.fix)" }.joined(separator: "\n"))
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }

    static func show(_ caps: Capabilities, indent: String = "") {
        print("\(indent)feature               here  detail")
        for c in caps.checks {
            print("\(indent)\(c.name.padding(toLength: 20, withPad: " ", startingAt: 0))  \(c.ok ? "yes " : "NO  ")  \(c.detail)\(c.ok || c.fix.isEmpty ? "" : "\n\(indent)                            fix: \(c.fix)")")
        }
    }
}

/// Where a lab's hosts are: the topology's `ssh:` targets, an inventory, or the built-in VM pair.
struct HostOptions: ParsableArguments {
    @Option(help: ArgumentHelp("An inventory (JSON) that binds the topology's host names to machines; see docs/agent.md.",
                               discussion: "Default: $PATHBED_INVENTORY, else the built-in VM pair's when it is up and has every host the lab names."),
            completion: .file(extensions: ["json"]))
    var inventory: String?

    func controller(for t: Topology, quiet: Bool) throws -> LabController {
        let remote = t.hosts.filter { !$0.isLocal }.map(\.name)
        var inv: Inventory?
        if let path = inventory ?? ProcessInfo.processInfo.environment["PATHBED_INVENTORY"] {
            inv = try Inventory.read(path)
        } else if !remote.isEmpty {
            let pair = VMPair()
            if pair.load() != nil, FileManager.default.fileExists(atPath: pair.inventoryPath), let i = try? Inventory.read(pair.inventoryPath),
               remote.allSatisfy({ i.hosts[$0] != nil }) {
                inv = i
                if !quiet { printError("  hosts \(remote.joined(separator: ", ")): the built-in VM pair (`pathbed vm status`); --inventory chooses others") }
            }
        }
        if let inv {
            let unknown = inv.hosts.keys.filter { name in !t.hosts.contains { $0.name == name } }
            if unknown.count == inv.hosts.count, !inv.hosts.isEmpty {
                throw LabError("inventory \(inv.file ?? "") names none of the lab's hosts (it has \(inv.hosts.keys.sorted().joined(separator: ", ")); the lab has \(t.hosts.map(\.name).joined(separator: ", ")))",
                               fix: "name the topology's hosts in the inventory")
            }
        }
        return LabController.forLab(t, inventory: inv)
    }
}
