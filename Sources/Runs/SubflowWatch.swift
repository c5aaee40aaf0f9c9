import Foundation
import Hosts
import Report
import TopologyModel

/// Every TCP socket (MPTCP subflows among them) of the nodes the workloads run in: the counter
/// sampler reads them from the kernel each round (INET_DIAG: TCP_INFO, an MPTCP subflow's
/// token), on every host; here they are put together per socket and claimed by workloads.
enum SubflowWatch {
    static func subflows(_ readings: [(host: String, t: Double, sockets: [SocketReading])], topology t: Topology,
                         claims: [SubflowTable.Claim]) -> (subflows: [RunResults.Subflow], connections: [RunResults.Connection], note: String?) {
        let addresses = t.addressesByNode
        var paths: [String: String] = [:]
        for (n, list) in addresses { for (iface, a) in list { paths[a.address.description] = "\(n):\(iface)" } }
        var nodes: [String] = []
        for c in claims { for n in [c.client, c.server] where !nodes.contains(n) { nodes.append(n) } }
        let byNamespace = Dictionary(nodes.map { (t.namespace(of: $0), $0) }, uniquingKeysWith: { a, _ in a })
        var tables: [String: SubflowTable] = [:]
        // MPTCP connections (MPTCP_INFO) in tables of their own, claimed the same way (their
        // addresses and ports are their first subflow's).
        var connectionTables: [String: SubflowTable] = [:]
        var counters: [String: Bool] = [:]
        for n in nodes {
            let map = Dictionary((addresses[n] ?? []).map { ($0.1.address.description, $0.0) }, uniquingKeysWith: { a, _ in a })
            tables[n] = SubflowTable(node: n, interfaces: map, paths: paths)
            connectionTables[n] = SubflowTable(node: n, interfaces: map, paths: paths)
        }
        // A socket open before the run's start is no socket of this run (the previous
        // repetition's transfer, still draining): left out, and counted.
        func key(_ s: SocketReading) -> String { "\(s.namespace) \(s.local):\(s.localPort)>\(s.remote):\(s.remotePort)" }
        let before = Set(readings.filter { $0.t < 0 }.flatMap { $0.sockets.map(key) })
        for r in readings where r.t >= 0 {
            let grouped = Dictionary(grouping: r.sockets.filter { byNamespace[$0.namespace] != nil && !before.contains(key($0)) }, by: \.namespace)
            for (ns, sockets) in grouped {
                let node = byNamespace[ns]!
                tables[node]?.add(sockets.filter { $0.subflows == nil }.map(line), at: r.t)
                let conns = sockets.filter { $0.subflows != nil }
                for c in conns { counters[c.token.map { String(format: "%08x", $0) } ?? "", default: true] = c.byteCounters ?? false }
                connectionTables[node]?.add(conns.map(line), at: r.t)
            }
        }
        let subflows = nodes.flatMap { tables[$0]?.subflows(claims) ?? [] }
        // A connection row: its subflow count rides in the table's window column.
        let connections = nodes.flatMap { connectionTables[$0]?.subflows(claims) ?? [] }.compactMap { row -> RunResults.Connection? in
            guard let token = row.token else { return nil }
            var c = RunResults.Connection(workload: row.workload, node: row.node, side: row.side, token: token, local: row.local, remote: row.remote,
                                          byteCounters: counters[token] ?? false)
            c.times = row.times; c.dataAcked = row.bytesAcked; c.dataReceived = row.bytesReceived; c.subflows = row.cwnd
            return c
        }
        let left = tables.values.map(\.leftOut).reduce(0, +)
        var notes: [String] = []
        // How often each host read them (once a second under software emulation).
        for (host, rows) in Dictionary(grouping: readings, by: \.host).sorted(by: { $0.key < $1.key }) {
            let gaps = zip(rows.dropFirst(), rows).map { $0.t - $1.t }.sorted()
            if let median = gaps.isEmpty ? nil : gaps[gaps.count / 2], median > 0.15 {
                notes.append(String(format: "sockets read every %.1f s on %@ (software emulation: every 100 ms there cost the lab's throughput)", median, host))
            }
        }
        let earlier = before.filter { k in byNamespace.keys.contains { k.hasPrefix($0 + " ") } }.count
        if earlier > 0 { notes.append("\(earlier) sockets open before the run's start (an earlier run's, still draining) were left out") }
        if left > 0 { notes.append("\(left) socket samples past the limits (\(SubflowTable.maximumSockets) sockets per node, \(SubflowTable.maximumSamples) samples each) were left out") }
        return (subflows, connections, notes.isEmpty ? nil : notes.joined(separator: "; "))
    }

    static func line(_ s: SocketReading) -> SocketLine {
        var l = SocketLine(localAddress: s.local, localPort: s.localPort, remoteAddress: s.remote, remotePort: s.remotePort, device: s.device)
        l.token = s.token.map { String(format: "%08x", $0) }
        l.cwnd = s.subflows.map { min(max($0, 0), 255) } ?? Int(s.cwnd); l.srttMs = Double(s.srttMicroseconds) / 1000; l.retransmits = Int(s.retransmits)
        l.bytesAcked = s.bytesAcked; l.bytesReceived = s.bytesReceived
        return l
    }
}
