import Engine
import Foundation
import Hosts
import Report
import TopologyModel

/// What MPTCP did during a run, as the kernel's MPTCP selftests read it: each MPTCP node's
/// MPTcpExt counters before and after, and its `ip mptcp monitor` events as they happen.
final class MPTCPWatch: @unchecked Sendable {
    let lab: LabController
    let clock: RunClock
    let stop: StopFlag
    /// (node, host, namespace) of every node with MPTCP on a host with MPTCP.
    let nodes: [(String, String, String)]
    private let lock = NSLock()
    /// Each node's monitor output.
    private var lines: [(node: String, lines: StampedLines)] = []

    init(lab: LabController, topology t: Topology, clock: RunClock, stop: StopFlag) {
        self.lab = lab; self.clock = clock; self.stop = stop
        nodes = t.nodes.filter { n in (n.mptcp?.enabled ?? false) && (t.host(named: n.host)?.mptcp ?? true) }
            .map { ($0.name, $0.host, t.namespace(of: $0.name)) }
    }

    var events: [RunResults.MPTCPEvent] {
        lock.withLock { lines }.flatMap { node, l in l.all.compactMap { Self.parseEvent($0.1, node: node, t: $0.0) } }.sorted { $0.t < $1.t }
    }

    /// MPTcpExt counters per node, now.
    func counters() -> [String: [String: Int]] {
        var out: [String: [String: Int]] = [:]
        for (node, host, ns) in nodes {
            guard let e = lab.executors[host] else { continue }
            var text = BoundedText(limit: 1 << 20)
            guard (try? e.run(["cat", "/proc/net/netstat"], in: ns, timeout: 20, output: { s, d in if s == .stdout { text.append(d) } })) == 0 else { continue }
            out[node] = Self.parseMPTcpExt(text.text)
        }
        return out
    }

    static func growth(before: [String: [String: Int]], after: [String: [String: Int]]) -> [String: [String: Int]] {
        var out: [String: [String: Int]] = [:]
        for (node, a) in after {
            let grew = a.compactMap { k, v -> (String, Int)? in let d = v &- (before[node]?[k] ?? 0); return d != 0 ? (k, d) : nil }
            if !grew.isEmpty { out[node] = Dictionary(uniqueKeysWithValues: grew) }
        }
        return out
    }

    /// The MPTcpExt counters of /proc/net/netstat (a line of names, then one of values).
    public static func parseMPTcpExt(_ text: String) -> [String: Int] {
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("MPTcpExt:") }
        guard lines.count == 2 else { return [:] }
        let names = lines[0].split(separator: " ").dropFirst(), values = lines[1].split(separator: " ").dropFirst()
        // Paired first, then read: a value that is no Int leaves its own name out, not its neighbours'.
        return Dictionary(zip(names, values).compactMap { n, v in Int(v).map { (String(n), $0) } }, uniquingKeysWith: { a, _ in a })
    }

    /// `ip mptcp monitor` in every MPTCP node, each line stamped on arrival (line-buffered:
    /// into a pipe, ip would hold its events until it exits).
    func startMonitors(until seconds: Double) -> [Thread] {
        let flag = stop
        let connections: [Unchecked<HostExecutor>?] = nodes.map { _, host, _ in
            (try? lab.executor(host)).map { Unchecked($0.sideConnection(stop: { flag.isSet })) }
        }
        connectInTurn(connections.compactMap { $0 })
        return zip(nodes, connections).map { n, connection in
            let (node, _, ns) = n
            guard let e = connection else { return Thread {} }
            let output = StampedLines(clock: clock)
            lock.withLock { lines.append((node, output)) }
            let th = Thread {
                _ = try? e.value.run(["stdbuf", "-oL", "ip", "mptcp", "monitor"], in: ns, timeout: seconds + 5) { s, d in
                    if s == .stdout { output.add(d) }
                }
                e.value.close()
            }
            th.start()
            return th
        }
    }

    static let eventNames: [Int: String] = [
        1: "CREATED", 2: "ESTABLISHED", 3: "CLOSED", 6: "ANNOUNCED", 7: "REMOVED", 10: "SF_ESTABLISHED",
        11: "SF_CLOSED", 13: "SF_PRIORITY", 15: "LISTENER_CREATED", 16: "LISTENER_CLOSED",
    ]

    /// `[       SF_CLOSED] token=... remid=1 locid=2 saddr4=10.0.2.2 daddr4=10.0.3.2 ...`
    static func parseEvent(_ line: String, node: String, t: Double) -> RunResults.MPTCPEvent? {
        guard line.hasPrefix("["), let close = line.firstIndex(of: "]") else { return nil }
        var type = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
        // iproute2 releases older than the kernel print its newer events by number
        // (include/uapi/linux/mptcp.h: MPTCP_EVENT_LISTENER_CREATED = 15, _CLOSED = 16).
        if type.hasPrefix("UNKNOWN "), let n = Int(type.dropFirst(8)), let name = Self.eventNames[n] { type = name }
        let fields = line[line.index(after: close)...].split(separator: " ")
        let keep = fields.filter { $0.hasPrefix("saddr") || $0.hasPrefix("daddr") || $0.hasPrefix("locid") || $0.hasPrefix("remid") }
        return RunResults.MPTCPEvent(t: t, node: node, type: type, detail: keep.joined(separator: " "))
    }
}
