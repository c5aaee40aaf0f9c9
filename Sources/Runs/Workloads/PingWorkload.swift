import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// ping: the RTT of one echo every 200 ms (`with: {interval: 100ms}` to change it).
final class PingWorkload: WorkloadPlugin, @unchecked Sendable {
    let workload: Workload
    let options: Workload.Ping
    private var clientExecutor: Unchecked<HostExecutor>?
    private let lock = NSLock()
    private var result: RunResults.WorkloadResult?
    private var latest: Double?

    init(_ w: Workload, _ options: Workload.Ping) { workload = w; self.options = options }

    var interval: Double { options.interval.seconds }

    func prepare(_ env: RunEnvironment) throws { clientExecutor = try env.connection(to: options.client) }

    func run(_ env: RunEnvironment) {
        guard let e = clientExecutor?.value ?? (try? env.connection(to: options.client).value) else { return }
        defer { e.close() }
        // A count, not a deadline: with `-w`, ping stops at the first ICMP error it receives (a
        // router's "network unreachable" while a fault holds a link down), and the workload with it.
        let count = max(1, Int((duration / interval).rounded(.down)))
        var argv = ["ping", "-n", "-D", "-i", String(interval), "-c", String(count), "-W", "1"]
        if let bind = options.bind { argv += ["-I", bind.description] }
        argv.append(options.target.description)
        let startedAt = env.clock.now
        // Each reply is placed at its echo's send time: when it came, less its RTT (ping's own
        // schedule drifts by milliseconds per echo). When it came is ping's own stamp (-D, the
        // host's realtime clock), anchored to the run's clock by the line that reached this
        // machine soonest after it: a line's arrival here is late by however long the agent and
        // ssh took to hand it over (0.6 s once from an emulated VM, which put a reply inside a
        // partition). Without stamps, or with a host clock that jumped, the arrival is used.
        let lines = StampedLines(clock: env.clock)
        // The count ends it when ping keeps its schedule; on a host that delays it (an emulated
        // VM), it is stopped 1 s after its planned end, and that is no failure.
        let clock = env.clock, end = startedAt + duration + 1
        let stopped = StopFlag()
        var code = (try? e.run(argv, in: env.namespace(of: options.client), timeout: duration + 30, input: nil,
                              stop: { if clock.now >= end { stopped.set(); return true }; return false }) { [self] s, d in
            guard s == .stdout else { return }
            lines.add(d)
            if let ms = PingOutput.reply(Substring(String(decoding: d, as: UTF8.self)))?.milliseconds { lock.withLock { latest = ms } }
        }) ?? -1
        if stopped.isSet { code = 0 }
        var series = Series(name: "\(workload.name) (ping RTT)", unit: "ms", quantity: .rtt)
        let replies = lines.all.compactMap { t, line in
            PingOutput.reply(Substring(line)).map { (arrived: t, stamp: PingOutput.stamp(Substring(line)), ms: $0.milliseconds) }
        }
        for r in replies { series.times.append(r.arrived - r.ms / 1000); series.values.append(r.ms) }
        if let anchored = Self.anchored(replies) { series.times = anchored }
        // Echoes sent as planned for the time ping ran (a run that ended early stopped it sooner).
        let ranFor = min(duration, max(0, env.clock.now - startedAt))
        let sent = Int((ranFor / interval).rounded(.down))
        lock.withLock {
            result = RunResults.WorkloadResult(name: workload.name, plugin: workload.plugin, node: options.client, target: options.target.description,
                                               mptcp: false, started: startedAt, exitCode: code, error: series.isEmpty ? "no replies" : nil, series: [series],
                                               metrics: ["replies": Double(series.values.count), "sent (planned)": Double(sent)])
        }
    }

    /// The replies' send times from ping's own stamps, on the run's clock (see `run`); nil
    /// when a reply has no stamp, the stamps go backwards, or the host's clock was set meanwhile.
    /// A line's lag (its arrival here less its stamp) is the clocks' offset plus its hand-over
    /// delay: a stalled hand-over raises the lags of some lines for a while, a clock set raises
    /// or lowers every lag after it. So the least lag of the first and of the last third of the
    /// replies agree within 1 s unless the clock was set.
    static func anchored(_ replies: [(arrived: Double, stamp: Double?, ms: Double)]) -> [Double]? {
        let stamps = replies.compactMap(\.stamp)
        guard !replies.isEmpty, stamps.count == replies.count, zip(stamps, stamps.dropFirst()).allSatisfy({ $0 <= $1 }) else { return nil }
        let lags = zip(replies, stamps).map { $0.arrived - $1 }
        let third = max(1, lags.count / 3)
        guard let offset = lags.min(), let early = lags.prefix(third).min(), let late = lags.suffix(third).min(), abs(early - late) <= 1 else { return nil }
        return zip(replies, stamps).map { $1 + offset - $0.ms / 1000 }
    }

    func sample() -> (metric: String, value: Double, unit: String)? { lock.withLock { latest }.map { ("RTT", $0, "ms") } }

    func collect() -> RunResults.WorkloadResult { lock.withLock { result } ?? notRun(node: options.client, target: options.target.description) }
}

