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
        abstract: "Build a lab in the kernel (on this machine).",
        discussion: "Validates the file and checks the kernel first; changes nothing if either fails. A second `up` of the same file changes nothing. If a step fails, everything this `up` created is removed."
    )
    @Argument(help: "Topology file.", completion: .file(extensions: ["yaml", "yml"])) var file: String
    @Flag(name: .shortAndLong, help: "Print only errors.") var quiet = false

    func run() throws {
        let t = try loadTopology(file)
        do {
            let r = try LabController.up(t, progress: { if !quiet { printError("  \($0)") } })
            if quiet { return }
            if r.changed {
                print("lab \(t.name) is up: \(r.namespaces) namespaces, \(r.operations) operations in \(String(format: "%.2f", r.seconds)) s")
                print("  try: pathbed exec \(t.nodes[0].name) -- ip addr    |   pathbed status   |   pathbed down \(t.name)")
            } else {
                print("lab \(t.name) is already up as \(file) describes it; nothing to change")
            }
        } catch { throw fail(error) }
    }
}

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove everything a lab created.",
        discussion: "Takes the lab's name or its topology file. Works after an interrupted or killed `up`, and touches only namespaces tagged pb.LAB."
    )
    @Argument(help: "Lab name or topology file.", completion: .file(extensions: ["yaml", "yml"])) var lab: String

    func run() throws {
        var name = lab
        if lab.hasSuffix(".yaml") || lab.hasSuffix(".yml") || lab.contains("/") { name = try loadTopology(lab).name }
        do {
            let n = try LabController.down(name)
            print(n == 0 ? "lab \(name) is not up; nothing to remove" : "lab \(name) is down: removed \(n) namespaces")
        } catch { throw fail(error) }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show labs, their nodes, links and qdiscs as the kernel reports them.")
    @Argument(help: "A lab's name (default: all).") var lab: String?

    func run() throws {
        let labs = lab.map { [$0] } ?? LabController.labs()
        if labs.isEmpty { print("no labs are up"); return }
        for name in labs {
            let j = LabJournal.load(name)
            let spaces = NetworkNamespace.list().filter { $0 == "pb.\(name)" || $0.hasPrefix("pb.\(name).") }
            print("lab \(name): \(j?.state.rawValue ?? "no journal (run `pathbed down \(name)`)")\(j.map { " from \($0.file)" } ?? ""), \(spaces.count) namespaces")
            for ns in spaces {
                guard let fd = try? NetworkNamespace.open(ns) else { continue }
                defer { close(fd) }
                guard let h = try? RouteHandle(nsfd: fd, namespace: ns), let links = try? h.links() else { continue }
                let qdiscs = (try? h.qdiscs()) ?? []
                print("  \(ns)")
                for l in links where l.name != "lo" {
                    let q = qdiscs.filter { $0.interfaceIndex == l.index && $0.kind != "noqueue" }.map { q in
                        q.kind + (q.rateBytesPerSecond.map { " \(Bitrate(bitsPerSecond: UInt64($0) * 8))" } ?? "") + (q.delayMicroseconds.map { " \($0)us" } ?? "")
                    }
                    print("    \(l.name.padding(toLength: 15, withPad: " ", startingAt: 0)) \(l.kind ?? "-")\(l.isUp ? " up" : " down") mtu \(l.mtu)\(q.isEmpty ? "" : "  qdisc " + q.joined(separator: " / "))")
                }
            }
        }
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
            let ns = try LabController.namespace(node: node, lab: lab)
            let fd = try NetworkNamespace.open(ns)
            let pid = NetworkNamespace.spawn(fd, command)
            close(fd)
            guard pid > 0 else { throw LabError("cannot start \(command[0]): \(String(cString: strerror(-pid)))") }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            if code == 127 { printError("error: \(command[0]): command not found in \(ns)") }
            if code == 126 && geteuid() != 0 { printError("error: cannot enter \(ns): entering a namespace needs root\n    fix: run as root (sudo pathbed exec ...)") }
            throw ExitCode(code)
        } catch let e as ExitCode { throw e } catch { throw fail(error) }
    }
}

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what this machine's kernel and tools support.",
        discussion: "Each feature is tried for real in a throwaway namespace. Given a topology, exits 1 if the lab needs something missing."
    )
    @Argument(help: "A topology to check against (optional).", completion: .file(extensions: ["yaml", "yml"])) var file: String?

    func run() throws {
        let topology = try file.map(loadTopology)
        let caps = CapabilityProbe.run()
        print("feature               here  detail")
        for c in caps.checks where !c.name.hasPrefix("cc:") {
            print("\(c.name.padding(toLength: 20, withPad: " ", startingAt: 0))  \(c.ok ? "yes " : "NO  ")  \(c.detail)\(c.ok || c.fix.isEmpty ? "" : "\n                            fix: \(c.fix)")")
        }
        if let t = topology {
            let missing = caps.missing(for: t, plan: Planner.plan(t))
            if missing.isEmpty {
                print("\nlab \(t.name) (\(file!)): everything it needs on this machine is here")
            } else {
                printError("\nlab \(t.name) (\(file!)) needs what is missing here:\n" + missing.map { "  - \($0.name): \($0.fix)" }.joined(separator: "\n"))
                throw ExitCode(1)
            }
        }
    }
}
