import Foundation
import Hosts
import Report

/// Counter samples as they arrive, per host, kept with the host's own clock: they are put on
/// the run's clock when read, so that samples taken before the barrier come out negative.
final class SampleStore: @unchecked Sendable {
    private var rows: [(host: String, clock: UInt64, offset: Int64, c: [InterfaceCounters])] = []
    private var healthRows: [(host: String, clock: UInt64, offset: Int64, h: HealthSample)] = []
    private var socketRows: [(host: String, clock: UInt64, offset: Int64, s: [SocketReading])] = []
    private let lock = NSLock()
    private let runClock: RunClock

    init(clock: RunClock) { runClock = clock }

    func add(host: String, hostClock: UInt64, offset: Int64, _ c: [InterfaceCounters], health: HealthSample? = nil, sockets: [SocketReading]? = nil) {
        lock.withLock {
            rows.append((host, hostClock, offset, c))
            if let health { healthRows.append((host, hostClock, offset, health)) }
            if let sockets, !sockets.isEmpty { socketRows.append((host, hostClock, offset, sockets)) }
        }
    }

    /// The sockets read with the counters, on the run's clock, in time order.
    func sockets() -> [(host: String, t: Double, sockets: [SocketReading])] {
        lock.withLock { socketRows }.map { (host: $0.host, t: runClock.seconds(hostClock: $0.clock, offset: $0.offset), sockets: $0.s) }.sorted { $0.t < $1.t }
    }

    /// The hosts' health readings on the run's clock, per host, in time order.
    func health() -> [String: [(t: Double, h: HealthSample)]] {
        let all = lock.withLock { healthRows }.map { ($0.host, runClock.seconds(hostClock: $0.clock, offset: $0.offset), $0.h) }
        return Dictionary(grouping: all, by: \.0).mapValues { $0.map { (t: $0.1, h: $0.2) }.sorted { $0.t < $1.t } }
    }

    private func timed() -> [(host: String, t: Double, c: [InterfaceCounters])] {
        lock.withLock { rows }.map { ($0.host, runClock.seconds(hostClock: $0.clock, offset: $0.offset), $0.c) }.sorted { $0.t < $1.t }
    }

    /// Received throughput per interface (node:interface, or the bridge port), Mbit/s.
    func series(_ interval: Double) -> [Series] {
        Series.interfaceRates(timed().filter { $0.t >= -interval }.map { r in
            (r.t, r.c.map { RunResults.CounterReading(namespace: $0.namespace, interface: $0.interface, rxBytes: $0.rxBytes, txBytes: $0.txBytes) })
        }, received: true)
    }

    func raw() -> [RunResults.RawSample] {
        timed().map { r in
            RunResults.RawSample(host: r.host, t: r.t, counters: r.c.map {
                RunResults.CounterReading(namespace: $0.namespace, interface: $0.interface, rxBytes: $0.rxBytes, txBytes: $0.txBytes)
            })
        }
    }

    /// The busiest interface's rate over the last second, for the progress line.
    func liveSummary() -> String {
        let all = series(0.1)
        // Over the last second of the samples (a series whose traffic stopped counts as idle).
        let now = all.compactMap(\.times.last).max() ?? 0
        let s = all.compactMap { x -> (String, Double)? in x.mean(from: now - 1, to: now + 0.01).map { (x.name, $0) } }
        guard let top = s.max(by: { $0.1 < $1.1 }), top.1 > 0.01 else { return "" }
        return String(format: "; busiest: %@ %.1f Mbit/s", top.0, top.1)
    }
}

