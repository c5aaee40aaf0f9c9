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

    func run() throws {
        let t = try loadTopology(file)
        do {
            let controller = try LabController.forThisMachine(t)
            if !dryRun { try LabController.requireRoot("building a lab", "up \(file)") }
            Interrupts.catchSignals()
            defer { Interrupts.restoreDefaults() }
            let r = try controller.up(t, dryRun: dryRun, progress: { if !quiet { printError("  \($0)") } })
            if r.recovered > 0 { printError("  removed \(r.recovered) namespaces left by an interrupted `up`") }
            if quiet && !dryRun { return }
            switch r.outcome {
            case .built:
                print("lab \(t.name) is up: \(r.namespaces) namespaces, \(r.operations) operations in \(String(format: "%.2f", r.seconds)) s")
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
            let r = try LabController.forThisMachine().down(name, waitForKernel: wait)
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
            let controller = try LabController.forThisMachine()
            let labs = try lab.map { [try labName($0)] } ?? controller.labs()
            if labs.isEmpty { print("no labs are up"); return }
            var unhealthy = false
            for name in labs {
                let s = controller.status(name)
                print("lab \(name): \(s.state.rawValue)\(s.file.map { " from \($0)" } ?? ""), \(s.namespaces.count) namespaces")
                for p in s.problems { print("  ! \(p)") }
                for n in s.notes { print("  note: \(n)") }
                if s.state != .up { unhealthy = true }
                for ns in s.namespaces {
                    print("  \(ns.name)")
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
        abstract: "Run a command inside a node's namespace (as `ip netns exec`).",
        discussion: "Example: pathbed exec client -- ping -c 3 10.0.3.2"
    )
    @Option(help: "The lab, when several labs have the node.") var lab: String?
    @Argument(help: "Node name.") var node: String
    @Argument(parsing: .postTerminator, help: "The command and its arguments.") var command: [String] = []

    func validate() throws { if command.isEmpty { throw ValidationError("give a command after --, e.g. pathbed exec \(node) -- ip addr") } }

    func run() throws {
        do {
            let ns = try LabController.forThisMachine().namespace(node: node, lab: lab)
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
        abstract: "Show what this machine's kernel and tools support.",
        discussion: "Each feature is tried for real in a throwaway namespace (needs root). Given a topology, exits 1 if the lab needs something missing, or if nothing could be checked."
    )
    @Argument(help: "A topology to check against (optional).", completion: .file(extensions: ["yaml", "yml"])) var file: String?

    func run() throws {
        let topology = try file.map(loadTopology)
        let plan = topology.map(Planner.plan)
        let local = plan?.hosts.first { h in topology?.host(named: h.host)?.isLocal ?? false }
        let caps = CapabilityProbe.run(sysctls: local?.sysctlKeys ?? [])
        print("feature               here  detail")
        for c in caps.checks {
            print("\(c.name.padding(toLength: 20, withPad: " ", startingAt: 0))  \(c.ok ? "yes " : "NO  ")  \(c.detail)\(c.ok || c.fix.isEmpty ? "" : "\n                            fix: \(c.fix)")")
        }
        if caps.isBlind {
            printError("\nerror: not root, so nothing could be tried\n    fix: run as root (sudo pathbed doctor\(file.map { " \($0)" } ?? ""))")
            throw ExitCode(1)
        }
        guard let t = topology, let plan else { return }
        for h in plan.hosts where !(t.host(named: h.host)?.isLocal ?? false) {
            print("\nhost \(h.host) (\(h.reach)): not checked from here; it is reached over ssh (the agent comes with the two-VM release)")
        }
        if let local {
            let missing = caps.missing(for: local)
            if missing.isEmpty {
                print("\nlab \(t.name) (\(file!)), host \(local.host): everything it needs on this machine is here")
            } else {
                printError("\nlab \(t.name) (\(file!)), host \(local.host), needs what is missing here:\n" + missing.map { "  - \($0.name): \($0.detail); \($0.fix)" }.joined(separator: "\n"))
                throw ExitCode(1)
            }
        }
    }
}
