import Engine
import Foundation
import Hosts
import Report
import TopologyModel

/// Every TCP socket (MPTCP subflows among them) of the nodes the workloads run in, read from
/// the kernel every 100 ms: `ss -HOtinM state established` (INET_DIAG: TCP_INFO for each
/// socket, MPTCP_INFO for each connection) in a loop in each node, over a connection of its
/// own, each batch parsed as it arrives and stamped on the run's clock.
final class SubflowWatch: @unchecked Sendable {
    /// The interval between two readings of a node's sockets.
    static let interval = 0.1
    /// The end of one batch of `ss` output.
    static let marker = "@@pathbed-subflows"

    let lab: LabController
    let clock: RunClock
    let stop: StopFlag
    let claims: [SubflowTable.Claim]
    /// (node, host, namespace, address → interface) of every node a claiming workload runs in.
    let nodes: [(String, String, String, [String: String], [String: String])]
    private let lock = NSLock()
    private var tables: [String: SubflowTable] = [:]

    init(lab: LabController, topology t: Topology, claims: [SubflowTable.Claim], clock: RunClock, stop: StopFlag) {
        self.lab = lab; self.clock = clock; self.stop = stop; self.claims = claims
        let addresses = t.addressesByNode
        var paths: [String: String] = [:]
        for (n, list) in addresses { for (iface, a) in list { paths[a.address.description] = "\(n):\(iface)" } }
        var names: [String] = []
        for c in claims { for n in [c.client, c.server] where !names.contains(n) { names.append(n) } }
        nodes = names.compactMap { n in
            guard let node = t.node(named: n) else { return nil }
            let map = Dictionary((addresses[n] ?? []).map { ($0.1.address.description, $0.0) }, uniquingKeysWith: { a, _ in a })
            return (n, node.host, t.namespace(of: n), map, paths)
        }
    }

    /// Starts the loop in every node; each ends with the run's stop or after `seconds`.
    func start(until seconds: Double) -> [Thread] {
        let script = "while :; do ss -HOtinM state established 2>/dev/null; echo \(Self.marker); sleep \(Self.interval); done"
        return nodes.map { node, host, ns, interfaces, paths in
            let flag = stop
            guard let main = try? lab.executor(host) else { return Thread {} }
            let e = Unchecked(main.sideConnection(stop: { flag.isSet }))
            try? e.value.connect()
            lock.withLock { tables[node] = SubflowTable(node: node, interfaces: interfaces, paths: paths) }
            let th = Thread { [self] in
                var partial = Data()
                var batch: [SocketLine] = []
                _ = try? e.value.run(["sh", "-c", script], in: ns, timeout: seconds + 5) { [self] s, d in
                    guard s == .stdout else { return }
                    partial.append(d)
                    while let nl = partial.firstIndex(of: 0x0A) {
                        let line = String(decoding: partial[partial.startIndex..<nl].prefix(16 << 10), as: UTF8.self)
                        partial.removeSubrange(partial.startIndex...nl)
                        if line == Self.marker {
                            let t = clock.now, lines = batch
                            lock.withLock { tables[node]?.add(lines, at: t) }
                            batch = []
                        } else if let socket = SocketLine.parse(line), batch.count < 4 * SubflowTable.maximumSockets {
                            batch.append(socket)
                        }
                    }
                    if partial.count > 1 << 20 { partial.removeAll() }  // a line that never ends
                }
                e.value.close()
            }
            th.start()
            return th
        }
    }

    /// The sockets of every node, claimed by workloads, and what was left out.
    func collect() -> (subflows: [RunResults.Subflow], note: String?) {
        let all = lock.withLock { tables }
        let subflows = nodes.flatMap { all[$0.0]?.subflows(claims) ?? [] }
        let left = all.values.map(\.leftOut).reduce(0, +)
        return (subflows, left > 0 ? "\(left) socket samples past the limits (\(SubflowTable.maximumSockets) sockets per node, \(SubflowTable.maximumSamples) samples each) were left out" : nil)
    }
}
