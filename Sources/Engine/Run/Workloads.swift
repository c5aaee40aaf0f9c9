import Foundation
import Netlink
import Report
import TopologyModel

/// What a workload sees of the run.
final class RunEnvironment: @unchecked Sendable {
    let lab: LabController
    let topology: Topology
    let clock: RunClock
    let stop: StopFlag
    let progress: (String) -> Void
    init(lab: LabController, topology: Topology, clock: RunClock, stop: StopFlag, progress: @escaping (String) -> Void) {
        self.lab = lab; self.topology = topology; self.clock = clock; self.stop = stop; self.progress = progress
    }

    func host(of node: String) -> String { topology.node(named: node)?.host ?? "local" }

    /// Runs a short command in a node and returns its exit code and stdout.
    func check(_ node: String, _ argv: [String], timeout: Double = 60) throws -> (Int32, String) {
        guard let e = lab.executors[host(of: node)] else { throw LabError("no connection to the host of \(node)") }
        var out = Data()
        let code = try e.run(argv, in: topology.namespace(of: node), timeout: timeout) { s, d in if s == .stdout { out.append(d) } }
        return (code, String(decoding: out, as: UTF8.self))
    }

    /// A connection to `node`'s host of its own, opened now: one opened when a workload starts
    /// would delay it by an ssh login.
    func connection(to node: String) -> Unchecked<HostExecutor> {
        let c = lab.sideExecutor(host(of: node), stop: stop)
        try? (c as? RemoteExecutor)?.connect()
        return Unchecked(c)
    }

    /// Waits until something listens on TCP `port` in `node` (at most 30 s).
    func waitForListener(_ node: String, port: Int) throws -> Bool {
        let wait = "for i in $(seq 300); do ss -Hltn 'sport = :\(port)' | grep -q . && exit 0; sleep 0.1; done; exit 1"
        return try check(node, ["sh", "-c", wait]).0 == 0
    }
}

/// A workload's long-lived server program in a node, over a connection of its own; `stop` (or
/// the run's stop) kills its process group.
final class WorkloadServer: @unchecked Sendable {
    private let stopFlag: StopFlag
    private let thread: Thread

    init(_ argv: [String], in node: String, _ env: RunEnvironment, output: @escaping (OutputStream, Data) -> Void = { _, _ in }) {
        stopFlag = StopFlag(parent: env.stop)
        let e = Unchecked(env.lab.sideExecutor(env.host(of: node), stop: stopFlag))
        let ns = env.topology.namespace(of: node)
        let output = Unchecked(output)
        thread = Thread { _ = try? e.value.run(argv, in: ns, timeout: nil, output: output.value); (e.value as? RemoteExecutor)?.close() }
        thread.start()
    }

    var isRunning: Bool { thread.isExecuting }

    func stop() {
        stopFlag.set()
        while thread.isExecuting { usleep(20_000) }
    }
}

/// A workload, built in or external. Checked before anything runs (`init`), then: `prepare`
/// (servers, files) before the barrier; `run` on a thread of its own from its start offset to
/// its end; `sample` for the live progress line; `stop` ends its servers; `collect` its result.
protocol WorkloadPlugin: AnyObject, Sendable {
    /// The `plugin:` names it plays (external plugins: any path with a '/').
    static var names: [String] { get }
    init(_ w: Workload, index: Int, topology: Topology) throws(LabError)
    var workload: Workload { get }
    var start: Double { get }
    var duration: Double { get }
    func prepare(_ env: RunEnvironment) throws
    func run(_ env: RunEnvironment)
    /// The latest value of its main metric, for the progress line.
    func sample() -> (metric: String, value: Double, unit: String)?
    func stop(_ env: RunEnvironment)
    func collect() -> RunResults.WorkloadResult
}

extension WorkloadPlugin {
    func sample() -> (metric: String, value: Double, unit: String)? { nil }
    func stop(_ env: RunEnvironment) {}
    func option(_ key: String) -> JSONValue? {
        if case let .object(o)? = workload.options { return o[key] }
        return nil
    }
}

/// Checks shared by the built-ins.
enum WorkloadChecks {
    static func client(_ w: Workload, _ i: Int, _ t: Topology, key: String = "client") throws(LabError) -> String {
        let node = key == "node" ? (w.node ?? w.client) : w.client
        guard let node, t.node(named: node) != nil else { throw LabError("workloads[\(i)] (\(w.name)) needs a `\(key):` node") }
        return node
    }

    static func duration(_ w: Workload, _ i: Int) throws(LabError) -> Double {
        guard let d = w.duration?.seconds, d > 0 else { throw LabError("workloads[\(i)] (\(w.name)) needs a `duration:`") }
        return d
    }

    static func target(_ w: Workload, _ i: Int, _ t: Topology) throws(LabError) -> IPAddress {
        guard let target = w.target ?? w.server.flatMap({ firstAddress(t, node: $0) }) else {
            throw LabError("workloads[\(i)] (\(w.name)) needs a `server:` node with an address, or a `target:` address")
        }
        return target
    }

    static func firstAddress(_ t: Topology, node: String) -> IPAddress? {
        for l in t.links { for e in l.endpoints where e.nodeName == node { if let a = e.address { return a.address } } }
        return nil
    }

    static func argv(_ v: JSONValue?, _ what: String, _ i: Int, _ w: Workload) throws(LabError) -> [String]? {
        switch v {
        case nil: return nil
        case let .string(s)?: return ["sh", "-c", s]
        case let .array(a)?:
            let argv = a.compactMap { if case let .string(s) = $0 { return s } else { return nil } }
            guard argv.count == a.count, !argv.isEmpty else { throw LabError("workloads[\(i)] (\(w.name)): `\(what)` must be a list of strings or one shell line") }
            return argv
        default: throw LabError("workloads[\(i)] (\(w.name)): `\(what)` must be a list of strings or one shell line")
        }
    }
}

/// Runs every workload of a run: checks them all first, prepares them, starts them together.
final class WorkloadRunner: @unchecked Sendable {
    typealias Make = @Sendable (Workload, Int, Topology) throws -> any WorkloadPlugin
    static let builtIns: [(names: [String], make: Make)] = [
        (Iperf3Workload.names, { try Iperf3Workload($0, index: $1, topology: $2) }),
        (PingWorkload.names, { try PingWorkload($0, index: $1, topology: $2) }),
        (CommandWorkload.names, { try CommandWorkload($0, index: $1, topology: $2) }),
        (TransferWorkload.names, { try TransferWorkload($0, index: $1, topology: $2) }),
    ]

    let plugins: [any WorkloadPlugin]

    /// Checks every workload before anything starts.
    init(_ t: Topology) throws(LabError) {
        var out: [any WorkloadPlugin] = []
        for (i, w) in t.workloads.enumerated() {
            if w.plugin.contains("/") {
                out.append(try ExternalWorkload(w, index: i, topology: t))
            } else if let b = Self.builtIns.first(where: { $0.names.contains(w.plugin) }) {
                do { out.append(try b.make(w, i, t)) } catch let e as LabError { throw e } catch { throw LabError("\(error)") }
            } else {
                throw LabError("workloads[\(i)] (\(w.name)): no built-in plugin '\(w.plugin)'",
                               fix: "use one of \(Self.builtIns.flatMap(\.names).joined(separator: ", ")), or the path of an external plugin (docs/plugins.md)")
            }
        }
        plugins = out
    }

    var end: Double { plugins.map { $0.start + $0.duration }.max() ?? 0 }

    func prepare(_ env: RunEnvironment) throws { for p in plugins { try p.prepare(env) } }

    private let lock = NSLock()
    private var ended: [String: Double] = [:]

    /// Every workload, each at its start offset; returns their threads.
    func start(_ env: RunEnvironment) -> [Thread] {
        plugins.map { p in
            let th = Thread { [self] in
                while env.clock.now < p.start && !env.stop.isSet { usleep(2_000) }
                if env.stop.isSet { return }
                p.run(env)
                lock.withLock { ended[p.workload.name] = env.clock.now }
            }
            th.start()
            return th
        }
    }

    func stop(_ env: RunEnvironment) { for p in plugins { p.stop(env) } }

    var results: [RunResults.WorkloadResult] {
        plugins.map { p in var r = p.collect(); r.ended = lock.withLock { ended[p.workload.name] }; return r }
    }

    /// The live figures for the progress line.
    func liveSummary() -> String {
        let parts = plugins.compactMap { p in p.sample().map { String(format: "%@ %.1f %@", p.workload.name, $0.value, $0.unit) } }
        return parts.isEmpty ? "" : "; " + parts.joined(separator: ", ")
    }
}

/// iperf3 (TCP, or MPTCP through mptcpize; `with: {reverse: true}` for a download, `streams: N`):
/// the receiver's 100 ms intervals, each stamped when its line arrived.
final class Iperf3Workload: WorkloadPlugin, @unchecked Sendable {
    static let names = ["iperf3"]
    let workload: Workload
    let start: Double, duration: Double
    let client: String, server: String, target: IPAddress, port: Int
    private var serverLines: StampedLines?
    private var clientLines: StampedLines?
    private var serverProcess: WorkloadServer?
    private var clientExecutor: Unchecked<HostExecutor>?
    private let lock = NSLock()
    private var result: RunResults.WorkloadResult?

    init(_ w: Workload, index i: Int, topology t: Topology) throws(LabError) {
        workload = w
        client = try WorkloadChecks.client(w, i, t)
        guard let s = w.server, t.node(named: s) != nil else { throw LabError("workloads[\(i)] (\(w.name)): iperf3 needs a `server:` node (Pathbed starts iperf3 -s there)") }
        server = s
        target = try WorkloadChecks.target(w, i, t)
        duration = try WorkloadChecks.duration(w, i)
        start = w.start.seconds
        port = 5201 + i
    }

    var reverse: Bool { if case .bool(true)? = option("reverse") { return true }; return false }
    var streams: Int { if case let .number(n)? = option("streams") { return max(1, min(Int(n), 128)) }; return 1 }

    func prepare(_ env: RunEnvironment) throws {
        let argv = (workload.mptcp ? ["mptcpize", "run"] : []) + ["iperf3", "-s", "-p", String(port), "-i", "0.1", "-f", "m", "--forceflush"]
        let lines = StampedLines(clock: env.clock)
        serverLines = lines
        serverProcess = WorkloadServer(argv, in: server, env) { s, d in if s == .stdout { lines.add(d) } }
        guard try env.waitForListener(server, port: port) else {
            throw LabError("iperf3 -s did not start in \(server) (workload \(workload.name))", fix: "`pathbed doctor` shows whether iperf3\(workload.mptcp ? " and mptcpize are" : " is") installed on \(env.host(of: server))")
        }
        env.progress("\(workload.name): iperf3 server listening in \(server) on port \(port)")
        clientExecutor = env.connection(to: client)
    }

    func run(_ env: RunEnvironment) {
        let e = clientExecutor?.value ?? env.lab.sideExecutor(env.host(of: client), stop: env.stop)
        defer { (e as? RemoteExecutor)?.close() }
        // Text intervals every 100 ms, flushed as they end: each is stamped when its line arrives,
        // on the run's clock. The receiver's lines are the wire's (a sender's 100 ms intervals are
        // its socket writes, bursts and gaps): the server's for an upload, the client's for a download.
        var argv = (workload.mptcp ? ["mptcpize", "run"] : []) + ["iperf3", "-c", target.description, "-p", String(port), "-t", String(Int(duration.rounded(.up))),
                                                                  "-i", "0.1", "-f", "m", "--forceflush"]
        if reverse { argv.append("-R") }
        if streams > 1 { argv += ["-P", String(streams)] }
        let startedAt = env.clock.now
        let mine = StampedLines(clock: env.clock)
        lock.withLock { clientLines = mine }
        var text = Data()
        let code = (try? e.run(argv, in: env.topology.namespace(of: client), timeout: duration + 30) { s, d in
            if s == .stdout { mine.add(d) }
            text.append(d)
        }) ?? -1
        let series = receiverSeries(from: startedAt)
        let output = String(decoding: text, as: UTF8.self)
        let error = output.split(separator: "\n").first { $0.contains("iperf3: error") }.map(String.init)
            ?? (series.isEmpty ? "no intervals (exit \(code)): \(output.suffix(200))" : nil)
        let values = series.values
        lock.withLock {
            result = RunResults.WorkloadResult(name: workload.name, plugin: "iperf3", node: client, target: target.description, mptcp: workload.mptcp,
                                               started: startedAt, exitCode: code, error: error, series: [series],
                                               metrics: values.isEmpty ? nil : ["mean Mbit/s": values.reduce(0, +) / Double(values.count)])
        }
    }

    private func receiverSeries(from startedAt: Double) -> Series {
        let receiver = reverse ? lock.withLock { clientLines } : serverLines
        var series = Series(name: "\(workload.name) (iperf3\(workload.mptcp ? ", MPTCP" : ""))", unit: "Mbit/s")
        for (t, v) in receiver?.intervals(summed: streams > 1) ?? [] where t >= startedAt { series.times.append(t); series.values.append(v) }
        return series
    }

    func sample() -> (metric: String, value: Double, unit: String)? {
        guard let last = receiverSeries(from: -1e9).values.suffix(10).nilIfEmpty else { return nil }
        return ("throughput", last.reduce(0, +) / Double(last.count), "Mbit/s")
    }

    func stop(_ env: RunEnvironment) { serverProcess?.stop() }

    func collect() -> RunResults.WorkloadResult {
        lock.withLock { result } ?? RunResults.WorkloadResult(name: workload.name, plugin: "iperf3", node: client, target: target.description, mptcp: workload.mptcp,
                                                              started: start, exitCode: -1, error: "did not run", series: [])
    }
}

/// ping: the RTT of one echo every 200 ms (`with: {interval: 0.1}` to change it).
final class PingWorkload: WorkloadPlugin, @unchecked Sendable {
    static let names = ["ping"]
    let workload: Workload
    let start: Double, duration: Double
    let client: String, target: IPAddress
    private var clientExecutor: Unchecked<HostExecutor>?
    private let lock = NSLock()
    private var result: RunResults.WorkloadResult?
    private var latest: Double?

    init(_ w: Workload, index i: Int, topology t: Topology) throws(LabError) {
        workload = w
        client = try WorkloadChecks.client(w, i, t)
        target = try WorkloadChecks.target(w, i, t)
        duration = try WorkloadChecks.duration(w, i)
        start = w.start.seconds
    }

    var interval: Double { if case let .number(n)? = option("interval") { return min(max(n, 0.01), 10) }; return 0.2 }

    func prepare(_ env: RunEnvironment) throws { clientExecutor = env.connection(to: client) }

    func run(_ env: RunEnvironment) {
        let e = clientExecutor?.value ?? env.lab.sideExecutor(env.host(of: client), stop: env.stop)
        defer { (e as? RemoteExecutor)?.close() }
        let argv = ["ping", "-n", "-i", String(interval), "-w", String(Int(duration.rounded(.up))), target.description]
        let startedAt = env.clock.now
        // ping flushes each reply's line: stamped when it arrives, less its RTT, it is placed at
        // the echo's send time (ping's own schedule drifts by milliseconds per echo).
        let lines = StampedLines(clock: env.clock)
        let code = (try? e.run(argv, in: env.topology.namespace(of: client), timeout: duration + 30) { [self] s, d in
            if s == .stdout { lines.add(d); if let ms = Self.parse(Substring(String(decoding: d, as: UTF8.self)))?.1 { lock.withLock { latest = ms } } }
        }) ?? -1
        var series = Series(name: "\(workload.name) (ping RTT)", unit: "ms")
        for (t, line) in lines.all {
            guard let (_, ms) = Self.parse(Substring(line)) else { continue }
            series.times.append(t - ms / 1000); series.values.append(ms)
        }
        let sent = Int((duration / interval).rounded(.down))
        lock.withLock {
            result = RunResults.WorkloadResult(name: workload.name, plugin: "ping", node: client, target: target.description, mptcp: false,
                                               started: startedAt, exitCode: code, error: series.isEmpty ? "no replies" : nil, series: [series],
                                               metrics: ["replies": Double(series.values.count), "sent (planned)": Double(sent)])
        }
    }

    /// `64 bytes from 10.0.3.2: icmp_seq=7 ttl=63 time=21.4 ms` → (7, 21.4).
    static func parse(_ line: Substring) -> (Int, Double)? {
        guard let seqPart = line.split(separator: " ").first(where: { $0.hasPrefix("icmp_seq=") }),
              let timePart = line.split(separator: " ").first(where: { $0.hasPrefix("time=") }),
              let seq = Int(seqPart.dropFirst("icmp_seq=".count)), let ms = Double(timePart.dropFirst("time=".count)) else { return nil }
        return (seq, ms)
    }

    func sample() -> (metric: String, value: Double, unit: String)? { lock.withLock { latest }.map { ("RTT", $0, "ms") } }

    func collect() -> RunResults.WorkloadResult {
        lock.withLock { result } ?? RunResults.WorkloadResult(name: workload.name, plugin: "ping", node: client, target: target.description, mptcp: false,
                                                              started: start, exitCode: -1, error: "did not run", series: [])
    }
}

/// A long-lived command in a node (a proxy, a tool of your own), from its start until its
/// duration ends (then SIGTERM): `with: {command: [argv...]}` or a shell line, and optionally
/// `server-command:` started first in the `server:` node. Its output goes to the run's log.
final class CommandWorkload: WorkloadPlugin, @unchecked Sendable {
    static let names = ["command"]
    let workload: Workload
    let start: Double, duration: Double
    let node: String
    let argv: [String]
    let serverArgv: [String]?
    private let lock = NSLock()
    private var result: RunResults.WorkloadResult?
    private var serverProcess: WorkloadServer?

    init(_ w: Workload, index i: Int, topology t: Topology) throws(LabError) {
        workload = w
        node = try WorkloadChecks.client(w, i, t, key: "node")
        duration = try WorkloadChecks.duration(w, i)
        start = w.start.seconds
        guard let a = try WorkloadChecks.argv(w.options.flatMap { if case let .object(o) = $0 { return o["command"] } else { return nil } }, "command", i, w) else {
            throw LabError("workloads[\(i)] (\(w.name)): a command workload needs `with: {command: [...]}`", fix: "e.g. `with: {command: [iperf3, -c, 10.0.3.2, -t, '10']}`")
        }
        argv = a
        serverArgv = try WorkloadChecks.argv(w.options.flatMap { if case let .object(o) = $0 { return o["server-command"] } else { return nil } }, "server-command", i, w)
        if serverArgv != nil, w.server.flatMap({ t.node(named: $0) }) == nil {
            throw LabError("workloads[\(i)] (\(w.name)): `server-command` runs in the `server:` node; name one")
        }
    }

    func prepare(_ env: RunEnvironment) throws {
        guard let serverArgv, let server = workload.server else { return }
        let p = WorkloadServer((workload.mptcp ? ["mptcpize", "run"] : []) + serverArgv, in: server, env)
        serverProcess = p
        usleep(300_000)
        if !p.isRunning { throw LabError("workload \(workload.name): its server-command ended at once in \(server)") }
    }

    func run(_ env: RunEnvironment) {
        let stop = StopFlag(parent: env.stop)
        let e = env.lab.sideExecutor(env.host(of: node), stop: stop)
        defer { (e as? RemoteExecutor)?.close() }
        let startedAt = env.clock.now
        var tail = Data()
        let end = startedAt + duration
        let timer = Thread { while env.clock.now < end && !stop.isSet { usleep(10_000) }; stop.set() }
        timer.start()
        let code = (try? e.run((workload.mptcp ? ["mptcpize", "run"] : []) + argv, in: env.topology.namespace(of: node), timeout: duration + 30) { _, d in
            tail.append(d); if tail.count > 8192 { tail.removeFirst(tail.count - 8192) }
        }) ?? 127
        let ranFor = env.clock.now - startedAt
        stop.set()
        // Killed at its end (SIGTERM, 143) is how a long-lived command ends; any other failure is said.
        let endedEarly = code != 0 && code != 143 && code != 124
        lock.withLock {
            result = RunResults.WorkloadResult(name: workload.name, plugin: "command", node: node, target: argv.joined(separator: " "), mptcp: workload.mptcp,
                                               started: startedAt, exitCode: code, error: endedEarly ? "exit \(code): \(String(decoding: tail, as: UTF8.self).suffix(300))" : nil,
                                               series: [], metrics: ["seconds": ranFor], output: String(decoding: tail, as: UTF8.self))
        }
    }

    func stop(_ env: RunEnvironment) { serverProcess?.stop() }

    func collect() -> RunResults.WorkloadResult {
        lock.withLock { result } ?? RunResults.WorkloadResult(name: workload.name, plugin: "command", node: node, target: argv.joined(separator: " "), mptcp: workload.mptcp,
                                                              started: start, exitCode: -1, error: "did not run", series: [])
    }
}

/// A timed file transfer through a real HTTP server: Python's http.server in the `server:`
/// node serves (sparse) files of the given sizes, curl in the client fetches each (`repeat` times),
/// MPTCP on both ends through mptcpize. `with: {sizes: [16kB, 1MB, 50MB], repeat: 3}`.
/// Each transfer's time and goodput are kept; the run's series is time per transfer. No transfer
/// starts after `duration`; one under way finishes (at most 120 s), so that none is cut short.
final class TransferWorkload: WorkloadPlugin, @unchecked Sendable {
    static let names = ["transfer"]
    let workload: Workload
    let start: Double, duration: Double
    let client: String, server: String, target: IPAddress, port: Int
    let sizes: [UInt64]
    let repeats: Int
    /// The files' directory is made by `mktemp -d` under this prefix: a fresh 0700 directory of
    /// root's, so nothing another user placed in /tmp beforehand (a symlink, say) is written through.
    let directoryPrefix: String
    private var directory = ""
    private let lock = NSLock()
    private var result: RunResults.WorkloadResult?
    private var serverProcess: WorkloadServer?
    private var clientExecutor: Unchecked<HostExecutor>?

    init(_ w: Workload, index i: Int, topology t: Topology) throws(LabError) {
        workload = w
        client = try WorkloadChecks.client(w, i, t)
        guard let s = w.server, t.node(named: s) != nil else { throw LabError("workloads[\(i)] (\(w.name)): a transfer needs a `server:` node") }
        server = s
        target = try WorkloadChecks.target(w, i, t)
        duration = try WorkloadChecks.duration(w, i)
        start = w.start.seconds
        port = 8000 + i
        var sizes: [UInt64] = []
        var list: [JSONValue] = []
        if case let .object(o)? = w.options {
            if case let .array(a)? = o["sizes"] { list = a } else if let one = o["size"] { list = [one] }
        }
        for v in list {
            switch v {
            case let .string(text):
                guard let b = Self.bytes(text), b > 0, b <= 1 << 34 else {
                    throw LabError("workloads[\(i)] (\(w.name)): '\(text)' is not a size between 1 B and 16 GB", fix: "write sizes like 16kB, 1MB, 50MB")
                }
                sizes.append(b)
            case let .number(n) where n >= 1 && n <= Double(1 << 34): sizes.append(UInt64(n))
            default: throw LabError("workloads[\(i)] (\(w.name)): sizes are like 16kB, 1MB, 50MB")
            }
        }
        guard !sizes.isEmpty else { throw LabError("workloads[\(i)] (\(w.name)): a transfer needs `with: {sizes: [...]}`", fix: "e.g. `with: {sizes: [16kB, 1MB, 50MB], repeat: 3}`") }
        self.sizes = sizes
        if case let .number(n)? = w.options.flatMap({ if case let .object(o) = $0 { return o["repeat"] } else { return nil } }) { repeats = max(1, min(Int(n), 10_000)) } else { repeats = 1 }
        directoryPrefix = Self.directoryStem(lab: t.name) + String(i)
    }

    /// `16kB`, `1MB`, `50MB`, `1GiB`, `1000` (bytes): kB and MB are powers of 1000, KiB and MiB of 1024.
    static func bytes(_ text: String) -> UInt64? {
        let s = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("kB", 1e3), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("B", 1)]
        for (u, k) in units where s.hasSuffix(u) {
            guard let v = Double(s.dropLast(u.count).trimmingCharacters(in: .whitespaces)), v.isFinite, v >= 0 else { return nil }
            return UInt64(v * k)
        }
        return Double(s).flatMap { $0.isFinite && $0 >= 0 ? UInt64($0) : nil }
    }

    func file(_ size: UInt64) -> String { "f\(size)" }

    /// `/tmp/pathbed-transfer-LAB-` and the workload's index; `mktemp` adds `.XXXXXX`, and `down`
    /// removes what a killed run left (`TransferLeftovers`).
    static func directoryStem(lab: String) -> String { "/tmp/pathbed-transfer-\(lab)-" }

    func prepare(_ env: RunEnvironment) throws {
        // Sparse files: no memory or disk taken, however large (nothing on the way compresses).
        let make = "d=$(mktemp -d \(directoryPrefix).XXXXXX) && " + sizes.map { "truncate -s \($0) \"$d\"/\(file($0))" }.joined(separator: " && ") + " && echo \"$d\""
        let (code, out) = try env.check(server, ["sh", "-c", make], timeout: 120)
        let made = out.trimmingCharacters(in: .whitespacesAndNewlines)
        guard code == 0, made.hasPrefix(directoryPrefix + "."), !made.contains("\n") else {
            throw LabError("workload \(workload.name): cannot write the files to serve in \(directoryPrefix).* on \(env.host(of: server))",
                           fix: "check that /tmp on \(env.host(of: server)) is writable and has room, and that mktemp and truncate (coreutils) are installed")
        }
        directory = made
        let argv = (workload.mptcp ? ["mptcpize", "run"] : []) + ["python3", "-m", "http.server", String(port), "--bind", target.description, "--directory", directory]
        serverProcess = WorkloadServer(argv, in: server, env)
        guard try env.waitForListener(server, port: port) else {
            throw LabError("the HTTP server (python3 -m http.server) did not start in \(server) (workload \(workload.name))", fix: "check that python3 is installed on \(env.host(of: server))")
        }
        env.progress("\(workload.name): HTTP server in \(server) on port \(port), \(sizes.count) files")
        clientExecutor = env.connection(to: client)
    }

    func run(_ env: RunEnvironment) {
        let e = clientExecutor?.value ?? env.lab.sideExecutor(env.host(of: client), stop: env.stop)
        defer { (e as? RemoteExecutor)?.close() }
        let startedAt = env.clock.now
        var times = Series(name: "\(workload.name) (transfer time)", unit: "s")
        var goodput = Series(name: "\(workload.name) (transfer goodput)", unit: "Mbit/s per transfer")
        var metrics: [String: Double] = [:]
        var failures: [String] = []
        let ns = env.topology.namespace(of: client)
        let host = target.family == .ipv6 ? "[\(target)]" : target.description
        var over = false
        for size in sizes where !over {
            var seconds: [Double] = []
            for _ in 0..<repeats {
                if env.stop.isSet || env.clock.now > startedAt + duration { over = true; break }
                let left = 120.0
                let argv = (workload.mptcp ? ["mptcpize", "run"] : []) + ["curl", "-sS", "-o", "/dev/null", "--max-time", "120",
                                                                          "-w", "%{time_total} %{size_download} %{http_code}", "http://\(host):\(port)/\(file(size))"]
                var out = Data()
                let t0 = env.clock.now
                let code = (try? e.run(argv, in: ns, timeout: left + 5) { s, d in if s == .stdout { out.append(d) } }) ?? -1
                let f = String(decoding: out, as: UTF8.self).split(separator: " ")
                guard code == 0, f.count == 3, let total = Double(f[0]), UInt64(f[1]) == size, f[2] == "200" else {
                    failures.append("\(size) B: curl exit \(code) (\(String(decoding: out, as: UTF8.self)))")
                    continue
                }
                seconds.append(total)
                times.times.append(t0); times.values.append(total)
                goodput.times.append(t0); goodput.values.append(Double(size) * 8 / total / 1e6)
            }
            if let s = Summary(seconds) { metrics["\(size) B median s"] = s.median; metrics["\(size) B mean s"] = s.mean }
        }
        lock.withLock {
            result = RunResults.WorkloadResult(name: workload.name, plugin: "transfer", node: client, target: target.description, mptcp: workload.mptcp,
                                               started: startedAt, exitCode: failures.isEmpty ? 0 : 1, error: failures.first.map { "\(failures.count) failed: \($0)" },
                                               series: [times, goodput], metrics: metrics)
        }
    }

    func stop(_ env: RunEnvironment) {
        serverProcess?.stop()
        if !directory.isEmpty { _ = try? env.check(server, ["rm", "-rf", directory]) }
    }

    func collect() -> RunResults.WorkloadResult {
        lock.withLock { result } ?? RunResults.WorkloadResult(name: workload.name, plugin: "transfer", node: client, target: target.description, mptcp: workload.mptcp,
                                                              started: start, exitCode: -1, error: "did not run", series: [])
    }
}

/// An external workload (docs/plugins.md): with a `server:` node, the plugin runs there first
/// (side `server`, until it says `ready`), then in the client (side `client`).
final class ExternalWorkload: WorkloadPlugin, @unchecked Sendable {
    static let names: [String] = []
    let workload: Workload
    let start: Double, duration: Double
    let launch: ExternalPlugin.Launch
    let serverLaunch: ExternalPlugin.Launch?
    private let lock = NSLock()
    private var client: ExternalPlugin.Process?
    private var server: ExternalPlugin.Process?
    private var startedAt: Double?

    init(_ w: Workload, index i: Int, topology t: Topology) throws(LabError) {
        workload = w
        let node = try WorkloadChecks.client(w, i, t, key: w.client == nil ? "node" : "client")
        let duration = try WorkloadChecks.duration(w, i)
        self.duration = duration
        start = w.start.seconds
        let program = try ExternalPlugin.resolve(w.plugin, relativeTo: t.file, what: "workloads[\(i)] (\(w.name))")
        launch = ExternalPlugin.Launch(program: program, role: .workload, name: w.name, node: node,
                                       context: ExternalPlugin.context(t, node: node, peer: w.server), options: w.options, duration: duration, mptcp: w.mptcp)
        serverLaunch = w.server.map { s in
            ExternalPlugin.Launch(program: program, role: .workload, name: w.name, node: s, context: ExternalPlugin.context(t, node: s, peer: node),
                                  options: w.options, duration: duration, mptcp: w.mptcp)
        }
    }

    func prepare(_ env: RunEnvironment) throws {
        guard let serverLaunch else { return }
        let p = ExternalPlugin.Process(serverLaunch, side: "server", clock: env.clock, stop: env.stop, onLog: env.progress)
        server = p
        p.start(lab: env.lab)
        guard p.wait(for: "ready") else {
            p.stopHard()
            throw LabError("external plugin \(p.label) did not say ready within \(Int(ExternalPlugin.answerSeconds)) s: \(p.failure ?? "no answer")",
                           fix: "docs/plugins.md: a server side says {\"type\":\"ready\"} once it listens")
        }
        env.progress("\(workload.name): \(p.label) ready")
    }

    func run(_ env: RunEnvironment) {
        let p = ExternalPlugin.Process(launch, side: serverLaunch == nil ? nil : "client", clock: env.clock, stop: env.stop, onLog: env.progress)
        lock.withLock { client = p; startedAt = env.clock.now }
        p.start(lab: env.lab)
        // It may end by itself; at its duration it is told to stop.
        p.waitForEnd(until: env.clock.now + duration, stop: env.stop)
        if !p.hasEnded { p.finish() }
    }

    func stop(_ env: RunEnvironment) { server?.finish() }

    func sample() -> (metric: String, value: Double, unit: String)? {
        guard let p = lock.withLock({ client }), let (k, s) = p.samples.sorted(by: { $0.key < $1.key }).first, let v = s.values.last else { return nil }
        return (k, v, s.unit)
    }

    func collect() -> RunResults.WorkloadResult {
        let p = lock.withLock { client }
        var error = p?.failure ?? (p == nil ? "did not run" : nil)
        if error == nil, let s = server?.failure { error = "server side: \(s)" }
        return RunResults.WorkloadResult(name: workload.name, plugin: workload.plugin, node: launch.node, target: serverLaunch?.node ?? "",
                                         mptcp: workload.mptcp, started: lock.withLock { startedAt } ?? start, exitCode: p?.exitCode ?? -1, error: error,
                                         series: (p?.samples ?? [:]).sorted { $0.key < $1.key }.map(\.value), metrics: p?.values)
    }
}

extension Collection {
    var nilIfEmpty: Self? { isEmpty ? nil : self }
}

/// A program's output, line by line, each line stamped on the run's clock when it arrived
/// (iperf3's intervals, ping's replies, `ip mptcp monitor`'s events).
final class StampedLines: @unchecked Sendable {
    private let clock: RunClock
    private let lock = NSLock()
    private var partial = Data()
    private var lines: [(Double, String)] = []

    init(clock: RunClock) { self.clock = clock }

    func add(_ d: Data) {
        let now = clock.now
        lock.withLock {
            partial.append(d)
            while let nl = partial.firstIndex(of: 0x0A) {
                lines.append((now, String(decoding: partial[partial.startIndex..<nl], as: UTF8.self)))
                partial.removeSubrange(partial.startIndex...nl)
            }
        }
    }

    /// Every complete line with its arrival time.
    var all: [(Double, String)] { lock.withLock { lines } }

    /// (arrival time, Mbit/s) of every 100 ms interval line: `[SUM]` lines when several
    /// streams run, stream lines otherwise; the end-of-test summaries are left out.
    func intervals(summed: Bool) -> [(Double, Double)] {
        lock.withLock { lines }.compactMap { t, line in
            // [  5]   0.10-0.20   sec   245 KBytes  20.0 Mbits/sec   (sender lines add Retr and Cwnd)
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 7, f[0].hasPrefix("[") else { return nil }
            let isSum = line.hasPrefix("[SUM]")
            guard isSum == summed else { return nil }
            let rangeIndex = isSum ? 1 : (f[0] == "[" ? 2 : 1)
            guard rangeIndex + 5 < f.count else { return nil }
            let range = f[rangeIndex].split(separator: "-").compactMap { Double($0) }
            guard range.count == 2, range[1] - range[0] < 0.2, f[rangeIndex + 1] == "sec",
                  let rate = Double(f[rangeIndex + 4]), f[rangeIndex + 5].hasSuffix("bits/sec") else { return nil }
            let scale: Double = f[rangeIndex + 5].hasPrefix("G") ? 1000 : f[rangeIndex + 5].hasPrefix("K") ? 0.001 : f[rangeIndex + 5].hasPrefix("M") ? 1 : 1e-6
            return (t, rate * scale)
        }
    }
}
