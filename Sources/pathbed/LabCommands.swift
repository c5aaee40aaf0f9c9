import ArgumentParser
import Engine
import Foundation
import Hosts
import Planning
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
        let t = try loadTopology(file, sayWarnings: true)
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
                if r.changes.isEmpty { print("lab \(t.name): `up` would change nothing") }
                else {
                    print("`up` would (nothing was changed):")
                    for c in r.changes { print("  \(c)") }
                }
            }
        } catch { throw fail(error) }
    }
}

/// A topology file rather than a lab's name.
func isTopologyFile(_ argument: String) -> Bool { argument.hasSuffix(".yaml") || argument.hasSuffix(".yml") || argument.contains("/") }

/// A lab's name given directly, or through its topology file.
func labName(_ argument: String) throws -> String {
    if isTopologyFile(argument) { return try loadTopology(argument).name }
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
            namespaces named pb.LAB or pb.LAB.NODE whose loopback carries the lab's tag; anything else is left alone. \
            The lab's journal names its hosts; without one (this machine rebooted since `up`), give the topology \
            file (and --inventory, as to `up`) to reach the hosts it names.
            """
    )
    @Argument(help: "Lab name or topology file.", completion: .file(extensions: ["yaml", "yml"])) var lab: String
    @OptionGroup var hosts: HostOptions
    @Flag(help: "Also wait until the kernel has freed the lab's devices, and say how long that took.") var wait = false
    @Flag(help: "Forget hosts that cannot be reached (taking what the lab had there as gone with them), and remove the rest.") var forgetUnreachable = false

    /// The journal's hosts; without a journal, the hosts of the file given (its other hosts keep
    /// what the lab made there across this machine's reboot, and their MTU records too).
    func controller(_ name: String) throws -> (LabController, journalless: Bool, underlays: [String: [String]]) {
        let store = StateStore()
        let hasJournal = store.load(name).journal != nil
        guard !hasJournal, isTopologyFile(lab) else {
            if hosts.inventory != nil && hasJournal { printError("note: --inventory is not needed: the lab's journal names its hosts") }
            return (LabController.forJournal(name, store: store), false, [:])
        }
        let t = try loadTopology(lab)
        guard t.hosts.contains(where: { !$0.isLocal }) else { return (LabController.forJournal(name, store: store), false, [:]) }
        do {
            let c = try hosts.controller(for: t, quiet: true)
            printError("  no journal of lab \(name) on this machine: looking for it on the hosts \(lab) names")
            let underlays = Dictionary(t.hosts.map { h in (h.name, [h.underlayInterface, h.underlay?.description].compactMap { $0 }) }, uniquingKeysWith: { a, _ in a })
            return (c, true, underlays)
        } catch {
            // VMs that are not up (this machine rebooted: they went with it), or an inventory
            // that no longer binds them: only this machine is looked at, and that is said.
            printError("warning: no journal of lab \(name), and its other hosts cannot be bound (\((error as? LabError)?.message ?? "\(error)")): only this machine is looked at")
            return (LabController.forJournal(name, store: store), false, [:])
        }
    }

    func run() throws {
        do {
            let name = try labName(lab)
            try LabController.requireRoot("removing a lab", "down \(lab)")
            // Ctrl-C or SIGTERM never stops a removal halfway (nor leaves its lock behind): the
            // lab is removed to the end; with --wait, it ends the wait for the kernel.
            Interrupts.catchSignals()
            let (c, journalless, underlays) = try controller(name)
            // Without a journal the file and the inventory are what find the lab's hosts again.
            let again = "pathbed down \(lab)" + (hosts.inventory.map { " --inventory \($0)" } ?? "")
            let r: LabController.DownResult
            do { r = try c.down(name, waitForKernel: wait, forgetUnreachable: forgetUnreachable, underlays: underlays) } catch let e as LabError where journalless {
                throw LabError(e.message, fix: "run `\(again)` again once the cause is fixed; --forget-unreachable passes over hosts that do not answer")
            }
            for m in r.restoredMTUs { print("  underlay \(m)") }
            for h in r.forgotten {
                printError(journalless ? "warning: host \(h) cannot be reached: if the lab is there too, run `\(again)` again once it answers"
                                       : "warning: forgot host \(h): it cannot be reached, and what the lab had there is taken as gone with it")
            }
            for f in r.foreign { printError("warning: \(f) is named like lab \(name)'s but was not made by it (no tag); left alone") }
            if r.removed == 0 && r.forgotten.isEmpty {
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
            // Without root neither the journals nor the namespaces' tags can be read: a healthy lab
            // would look unknown, so it is said plainly instead.
            try LabController.requireRoot("reading a lab's state", "status\(lab.map { " \($0)" } ?? "")")
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
            guard let e = controller.executors[host] else { throw LabError("lab '\(labName)' has no way to reach host '\(host)' here") }
            if controller.access[host]?.isLocal ?? true { try LabController.requireRoot("entering a lab's namespace", "exec \(node) -- ...") }
            // A remote command is stopped with this one (Ctrl-C); a local one gets the terminal and its signals.
            if !(controller.access[host]?.isLocal ?? true) { Interrupts.catchSignals() }
            defer { Interrupts.restoreDefaults() }
            let code = try e.runAttached(command, in: ns)
            if code == 127 { printError("error: \(command[0]): command not found in \(ns)\(controller.spansHosts ? " on \(host)" : "")") }
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
        guard let file else {
            let caps = LocalExecutor().capabilities(sysctls: [])
            Self.show(caps)
            if caps.isBlind {
                printError("\nerror: not root, so nothing could be tried\n    fix: run as root (sudo pathbed doctor)")
                throw ExitCode(1)
            }
            return
        }
        let t = try loadTopology(file)
        let controller: LabController
        do { controller = try hosts.controller(for: t, quiet: false) } catch { throw fail(error) }
        var failed = false
        for h in controller.doctor(t) {
            print("host \(h.host) (\(h.reach)), declared \(h.declaredMPTCP ? "MPTCP" : "plain (MPTCP off in its lab namespaces)")")
            switch h.info {
            case let .success(info): print("  kernel \(info.kernel) on \(info.hostname), Pathbed \(info.version)")
            case let .failure(e):
                printError("  \(e)")
                failed = true
                continue
            }
            guard let caps = h.capabilities else { continue }
            Self.show(caps, indent: "  ")
            if caps.isBlind {
                printError("  error: not root there, so nothing could be tried")
                failed = true
            } else if h.missing.isEmpty {
                print("  lab \(t.name): everything it needs on \(h.host) is here\n")
            } else {
                printError("  lab \(t.name) needs what is missing on \(h.host):\n" + h.missing.map { "    - \($0.name): \($0.detail); \($0.fix)" }.joined(separator: "\n"))
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
    @Option(help: ArgumentHelp("An inventory (Pathbed's JSON, or Ansible's INI or YAML) that binds the topology's host names to machines; see docs/agent.md.",
                               discussion: "Default: $PATHBED_INVENTORY, else the built-in VM pair's when it is up and has every host the lab names."),
            completion: .file(extensions: ["json"]))
    var inventory: String?

    func controller(for t: Topology, quiet: Bool) throws -> LabController {
        try HostBinding.controller(for: t, inventory: inventory) { if !quiet { printError("  \($0)") } }
    }
}
