import Engine
import Foundation
import Hosts
import Report
import TopologyModel

/// External plugins: any executable that speaks JSON lines on stdio, one object per line, in the
/// node's namespace on the node's host. docs/plugins.md specifies the protocol message by message.
///
/// Pathbed writes `start` (a workload) or `inject` (a fault) with everything the plugin needs,
/// later `stop` or `revert`, then closes the plugin's stdin. The plugin says `hello` first, then
/// any of `ready`, `sample`, `result`, `injected`, `reverted`, `log`, `error`. A plugin must also
/// stop (and revert) when its stdin ends or it gets SIGTERM: that is how it learns that its
/// controller is gone.
enum ExternalPlugin {
    static let protocolVersion = 1
    /// How long a plugin has to say `hello`, `ready` or `injected`.
    static let answerSeconds = 20.0
    /// A fault plugin that says `injected` later than this after it was asked puts its fault at
    /// another time than planned: a problem of the run.
    static let lateSeconds = 1.0

    enum Role: String, Codable, Sendable { case workload, fault }

    /// An interface of the node, as the plugin is told about it.
    struct Interface: Codable, Sendable, Hashable {
        var name: String
        var link: String
        var addresses: [String]
    }

    struct NodeInfo: Codable, Sendable, Hashable {
        var node: String
        var namespace: String
        var host: String
        var interfaces: [Interface]
        var addresses: [String] { interfaces.flatMap(\.addresses) }
    }

    /// Everything needed to start one plugin process.
    struct Launch: Sendable {
        var program: String
        var role: Role
        var name: String
        var node: String
        var context: (me: NodeInfo, peer: NodeInfo?)
        var options: JSONValue?
        var duration: Double
        var link: String?
        var mptcp = false
        /// A workload's port (its server side listens there); nil for a fault.
        var port: Int? = nil
    }

    /// The first message: who the plugin is, where, and its parameters.
    struct StartMessage: Codable {
        var pathbed = ExternalPlugin.protocolVersion
        var type: String
        var role: Role
        /// `client` or `server` for a workload with a server side; nil otherwise.
        var side: String?
        var name: String
        var node: String
        var namespace: String
        var host: String
        var interfaces: [Interface]
        var peer: NodeInfo?
        var link: String?
        var duration: Double
        var mptcp: Bool
        /// A workload's TCP port: the server side listens on it, the client connects to it.
        /// Pathbed tells the workload's connections apart by it (per-subflow figures).
        var port: Int?
        var with: JSONValue?
    }

    /// A line from a plugin.
    struct Message: Decodable {
        var type: String
        var `protocol`: Int?
        var name: String?
        var metric: String?
        var value: Double?
        var unit: String?
        var values: [String: Double]?
        var message: String?
    }

    static func nodeInfo(_ t: Topology, _ node: String) -> NodeInfo {
        var ifs: [Interface] = []
        for l in t.links {
            for e in l.endpoints {
                if case let .interface(n, name, a) = e, n == node {
                    ifs.append(Interface(name: name, link: l.name, addresses: a.map { [$0.description] } ?? []))
                }
            }
        }
        return NodeInfo(node: node, namespace: t.namespace(of: node), host: t.node(named: node)?.host ?? "local", interfaces: ifs)
    }

    static func context(_ t: Topology, node: String, peer: String?) -> (me: NodeInfo, peer: NodeInfo?) {
        (nodeInfo(t, node), peer.map { nodeInfo(t, $0) })
    }

    /// One plugin process, run on its own thread through a connection of its own.
    final class Process: @unchecked Sendable {
        let launch: Launch
        let side: String?
        let clock: RunClock
        private let feed = StdinFeed()
        private let lock = NSLock()
        private var partial = Data()
        private var said: Set<String> = []
        private(set) var samples: [String: Series] = [:]
        private var sampleCount = 0
        private(set) var values: [String: Double] = [:]
        private(set) var errors: [String] = []
        private(set) var logs: [String] = []
        /// Log and error lines shown on the progress output so far.
        private var printedNotes = 0
        private(set) var stderrTail = Data()
        /// Messages past the limits below, not kept (counted, and said in the result).
        private var dropped = 0
        var droppedMessages: Int { lock.withLock { dropped } }
        /// Samples kept of one plugin, all its metrics together (about 180 bytes each in memory).
        static let maximumSamples = 1_000_000
        private let decoder = JSONDecoder()
        /// A metric, unit or result name: printable, at most 100 characters (it becomes a CSV
        /// column, a plot's legend and a line of the summary).
        static func isName(_ s: String) -> Bool { s.count <= 100 && s.unicodeScalars.allSatisfy { !isControl($0) } }
        static let maximumMetrics = 64
        static let maximumNotes = 200
        /// The first message, written once the plugin has said hello (never before: a program
        /// that is not a plugin, a shell say, must not read it as input).
        private var startMessage: Data?
        private var started = false
        private(set) var exitCode: Int32?
        /// Set when it did not end within this many seconds of `stop` or `revert` and was killed.
        private var killedAfter: Double?
        private var thread: Thread?
        let onLog: (String) -> Void
        /// Set by the run's stop, or by `stopHard`.
        let stop: StopFlag

        init(_ launch: Launch, side: String?, clock: RunClock, stop: StopFlag, onLog: @escaping (String) -> Void) {
            self.launch = launch; self.side = side; self.clock = clock; self.onLog = onLog
            self.stop = StopFlag(parent: stop)
        }

        var label: String { "\(launch.name)\(side.map { " (\($0))" } ?? "") [\((launch.program as NSString).lastPathComponent) in \(launch.context.me.node)]" }

        /// Starts the program (through a connection of its own); it gets its first message once it
        /// has said hello. Returns at once.
        func start(lab: LabController) throws {
            let flag = stop
            let executor = try lab.executor(launch.context.me.host).sideConnection(stop: { flag.isSet })
            let me = launch.context.me
            let first = StartMessage(type: launch.role == .fault ? "inject" : "start", role: launch.role, side: side, name: launch.name,
                                     node: me.node, namespace: me.namespace, host: me.host, interfaces: me.interfaces, peer: launch.context.peer,
                                     link: launch.link, duration: launch.duration, mptcp: launch.mptcp, port: launch.port, with: launch.options)
            let encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            startMessage = (try? encoder.encode(first)).map { $0 + Data("\n".utf8) }
            // Not under mptcpize: the plugin is told `mptcp` and opens its sockets as it likes (docs/plugins.md).
            let argv = [launch.program]
            let e = Unchecked(executor)
            let th = Thread { [self] in
                let code = (try? e.value.run(argv, in: me.namespace, timeout: launch.duration + 60, input: feed) { [self] s, d in
                    if s == .stdout { take(d) } else { lock.withLock { stderrTail.append(d); if stderrTail.count > 4096 { stderrTail = Data(stderrTail.suffix(4096)) } } }
                }) ?? 127
                lock.withLock { exitCode = code }
                e.value.close()
            }
            thread = th
            th.start()
        }

        private func take(_ d: Data) {
            let now = clock.now
            var lines: [Data] = []
            lock.withLock {
                // Split at each newline in one pass, then drop what was taken once (removing each
                // line from the front as it was found made a chunk of short lines quadratic).
                let searchFrom = partial.endIndex
                partial.append(d)
                var lineStart = partial.startIndex
                var i = partial.index(partial.startIndex, offsetBy: max(0, searchFrom - partial.startIndex))
                while let nl = partial[i...].firstIndex(of: 0x0A) {
                    lines.append(Data(partial[lineStart..<nl]))
                    lineStart = nl + 1
                    i = lineStart
                }
                if lineStart > partial.startIndex { partial = Data(partial[lineStart...]) }
                // A message is one line of at most 1 MB: more without a newline is not the protocol.
                if partial.count > 1 << 20 {
                    partial.removeAll()
                    note(&errors, "wrote more than 1 MB without a newline (a message is one JSON line)")
                }
            }
            for line in lines where !line.isEmpty {
                guard let m = try? decoder.decode(Message.self, from: line) else {
                    lock.withLock { note(&errors, "not a message: \(printable(String(decoding: line.prefix(200), as: UTF8.self)))") }
                    continue
                }
                var greeting: Data?
                lock.withLock {
                    said.insert(m.type)
                    switch m.type {
                    case "hello":
                        if m.protocol != ExternalPlugin.protocolVersion {
                            note(&errors, "speaks protocol \(m.protocol.map(String.init) ?? "none"); Pathbed speaks \(ExternalPlugin.protocolVersion)")
                        } else if !started {
                            started = true
                            greeting = startMessage
                        }
                    case "sample":
                        guard started else { note(&errors, "a sample before hello is not kept"); break }
                        guard let metric = m.metric, let v = m.value else { note(&errors, "a sample needs `metric` and `value`"); break }
                        guard Self.isName(metric), Self.isName(m.unit ?? "") else {
                            note(&errors, "a sample's metric and unit are at most 100 printable characters: \(printable(String(metric.prefix(100))))"); break
                        }
                        guard v.isFinite, abs(v) <= 1e15 else { note(&errors, "sample \(metric) = \(v) is out of range (at most 1e15 in size)"); break }
                        guard m.unit != "Mbit/s" || v >= 0 else { note(&errors, "sample \(metric) = \(v) Mbit/s: a throughput is not negative"); break }
                        guard samples[metric] != nil || samples.count < Self.maximumMetrics else { dropped += 1; break }
                        // A plugin's Mbit/s series is throughput (plotted with it, and faults' impacts computed on it).
                        if samples[metric] == nil {
                            samples[metric] = Series(name: "\(launch.name) (\(metric))", unit: m.unit ?? "", quantity: m.unit == "Mbit/s" ? .throughput : .pluginMetric)
                        }
                        guard sampleCount < Self.maximumSamples else { dropped += 1; break }
                        sampleCount += 1
                        // Appended in place: a copy of the series per sample made 100,000 samples quadratic.
                        samples[metric]!.times.append(now)
                        samples[metric]!.values.append(v)
                    case "result":
                        guard started else { note(&errors, "a result before hello is not kept"); break }
                        for (k, v) in (m.values ?? [:]).prefix(Self.maximumMetrics) {
                            if !Self.isName(k) { note(&errors, "a result's names are at most 100 printable characters: \(printable(String(k.prefix(100))))") }
                            else if v.isFinite, abs(v) <= 1e15 { values[k] = v } else { note(&errors, "result \(k) = \(v) is out of range (at most 1e15 in size)") }
                        }
                    case "error":
                        note(&errors, printable(m.message ?? "error"))
                    case "log":
                        note(&logs, printable(m.message ?? ""))
                    default: break
                    }
                }
                if let greeting { feed.write(greeting) }
                // Shown as kept: the first `maximumNotes` of each, then one line that says the rest is counted.
                if m.type == "log" || m.type == "error" {
                    let shown = lock.withLock { () -> Int in printedNotes += 1; return printedNotes }
                    if shown <= 2 * Self.maximumNotes { onLog("\(label): \(printable(String((m.message ?? "").prefix(500))))") }
                    else if shown == 2 * Self.maximumNotes + 1 { onLog("\(label): more log and error lines are not shown (counted in the results)") }
                }
            }
        }

        /// Keeps a note (an error, a log line) unless there are already `maximumNotes`; counts it then.
        private func note(_ list: inout [String], _ text: String) {
            if list.count < Self.maximumNotes { list.append(String(text.prefix(1000))) } else { dropped += 1 }
        }

        /// Waits until the plugin said `type` (true), ended, or `seconds` passed.
        func wait(for type: String, seconds: Double = ExternalPlugin.answerSeconds) -> Bool {
            let deadline = clock.now + seconds
            while clock.now < deadline {
                let (ok, ended) = lock.withLock { (said.contains(type), exitCode != nil) }
                if ok { return true }
                if ended { return lock.withLock { said.contains(type) } }
                usleep(5_000)
            }
            return false
        }

        var hasEnded: Bool { lock.withLock { exitCode != nil } }
        var exitStatus: Int32? { lock.withLock { exitCode } }
        func said(_ type: String) -> Bool { lock.withLock { said.contains(type) } }

        /// Sends `stop` or `revert`, closes stdin, and waits for the program to end (it is
        /// killed after `grace` seconds).
        func finish(grace: Double = 10) {
            if lock.withLock({ started }) { feed.writeLine(#"{"type":"\#(launch.role == .fault ? "revert" : "stop")"}"#) }
            feed.close()
            let deadline = clock.now + grace
            while !hasEnded && clock.now < deadline { usleep(10_000) }
            if !hasEnded {
                lock.withLock { killedAfter = grace }
                stopHard()
            }
        }

        /// Waits for the program's end on its own (a workload that finishes its work).
        func waitForEnd(until deadline: Double, stop: StopFlag) {
            while !hasEnded && clock.now < deadline && !stop.isSet { usleep(10_000) }
        }

        /// Kills it (SIGTERM to its group, then SIGKILL) and waits for its thread.
        func stopHard() {
            stop.set()
            let deadline = monotonicNanoseconds() + 30_000_000_000
            while let t = thread, t.isExecuting, monotonicNanoseconds() < deadline { usleep(20_000) }
        }

        /// Why it failed, or nil.
        var failure: String? {
            lock.withLock {
                if !said.contains("hello") {
                    let err = String(decoding: stderrTail, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                    return "it never said hello (exit \(exitCode.map(String.init) ?? "none"))" + (err.isEmpty ? "" : ": \(err.suffix(300))")
                }
                // Its first protocol error and, when it had to be killed, that too.
                var why: [String] = []
                if let e = errors.first { why.append(e) }
                if let g = killedAfter {
                    let told = launch.role == .fault && said.contains("injected") ? "revert" : "stop"
                    why.append(String(format: "it did not end within %.0f s of being told to %@, and was killed: what it had not written yet is lost", g, told))
                }
                if why.isEmpty, let c = exitCode, c != 0, c != 143 { return "exit \(c): \(String(decoding: stderrTail, as: UTF8.self).suffix(300))" }
                return why.isEmpty ? nil : why.joined(separator: "; ")
            }
        }
    }
}

/// Whether a character is a control character (C0, DEL, C1): never shown as it is.
func isControl(_ u: Unicode.Scalar) -> Bool { u.value < 0x20 || (0x7F...0x9F).contains(u.value) }

/// Text from a plugin as it may be shown: see `safeText`.
func printable(_ s: String) -> String { safeText(s, singleLine: true) }
