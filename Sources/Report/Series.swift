import Foundation

/// A time series: seconds since the run's start, and a value.
public struct Series: Codable, Sendable, Equatable {
    /// What a series measures: what the report does with it (recovery times are computed on
    /// throughput, RTT goes on the RTT plot) follows from this, never from its name or unit.
    public enum Quantity: String, Codable, Sendable, CaseIterable {
        /// Bits a workload moved per second (iperf3's intervals), or an interface's received rate.
        case throughput
        /// Round-trip time of echoes (ping).
        case rtt
        /// Time of each transfer (the transfer workload).
        case transferTime = "transfer-time"
        /// Goodput of each transfer.
        case transferGoodput = "transfer-goodput"
        /// A metric a plugin reports, in its own unit.
        case pluginMetric = "plugin-metric"
        /// A subflow's congestion window (segments; in tidy.csv).
        case congestionWindow = "cwnd"
        /// An MPTCP connection's subflows (in tidy.csv).
        case subflowCount = "subflows"
    }

    public var name: String
    /// What the values are, e.g. "Mbit/s" or "ms".
    public var unit: String
    public var quantity: Quantity
    public var times: [Double]
    public var values: [Double]

    public init(name: String, unit: String, quantity: Quantity, times: [Double] = [], values: [Double] = []) {
        self.name = name; self.unit = unit; self.quantity = quantity; self.times = times; self.values = values
    }

    enum CodingKeys: String, CodingKey { case name, unit, quantity, times, values }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        unit = try c.decode(String.self, forKey: .unit)
        times = try c.decode([Double].self, forKey: .times)
        values = try c.decode([Double].self, forKey: .values)
        // Results written before series said what they measure (format 1 without `quantity`).
        quantity = try c.decodeIfPresent(Quantity.self, forKey: .quantity)
            ?? (unit == "Mbit/s" ? .throughput : unit == "ms" ? .rtt : unit == "s" ? .transferTime
                : unit == "Mbit/s per transfer" ? .transferGoodput : .pluginMetric)
    }

    public var isEmpty: Bool { times.isEmpty }

    /// Rates from a cumulative counter (bytes), in Mbit/s, between samples at least
    /// `minimumSeconds` apart (a sample that came late and the next one that came early would
    /// otherwise make a spike of a few bytes over almost no time).
    public static func rate(name: String, times: [Double], bytes: [UInt64], minimumSeconds: Double = 0.05) -> Series {
        var s = Series(name: name, unit: "Mbit/s", quantity: .throughput)
        guard times.count == bytes.count, times.count > 1 else { return s }
        var base = 0
        for i in 1..<times.count {
            let dt = times[i] - times[base]
            guard dt >= minimumSeconds else { continue }
            let delta = bytes[i] >= bytes[base] ? bytes[i] - bytes[base] : 0
            s.times.append(times[i]); s.values.append(Double(delta) * 8 / dt / 1e6)
            base = i
        }
        return s
    }

    /// Each interface's rate, received or sent, from counter readings: `NODE:IF rx` (or `tx`),
    /// the node being the namespace's last part (`bridges` for the lab's bridge namespace).
    public static func interfaceRates(_ readings: [(t: Double, counters: [RunResults.CounterReading])], received: Bool) -> [Series] {
        var byKey: [String: (times: [Double], bytes: [UInt64])] = [:]
        for r in readings {
            for c in r.counters {
                let parts = c.namespace.split(separator: ".")
                let node = parts.count >= 3 ? String(parts.last!) : "bridges"
                let key = "\(node):\(c.interface) \(received ? "rx" : "tx")"
                byKey[key, default: ([], [])].times.append(r.t)
                byKey[key, default: ([], [])].bytes.append(received ? c.rxBytes : c.txBytes)
            }
        }
        return byKey.keys.sorted().map { Series.rate(name: $0, times: byKey[$0]!.times, bytes: byKey[$0]!.bytes) }
    }

    /// The series on a grid (`step` seconds from 0 to `end`): each grid point holds the sample
    /// nearest to it within half a step, or nil (no sample there: lost, or not begun).
    public func nearestOnGrid(step: Double, end: Double) -> [Double?] {
        let n = Int((end / step).rounded(.down)) + 1
        var out = [Double?](repeating: nil, count: max(n, 0))
        var distance = [Double](repeating: .infinity, count: out.count)
        for (t, v) in zip(times, values) where t.isFinite && t >= -step / 2 {
            let i = Int((t / step).rounded())
            guard i >= 0, i < out.count else { continue }
            let d = abs(t - Double(i) * step)
            if d <= step / 2 + 1e-9, d < distance[i] { out[i] = v; distance[i] = d }
        }
        return out
    }

    /// Mean of the values with times in [from, to).
    public func mean(from: Double, to: Double) -> Double? {
        let v = zip(times, values).filter { $0.0 >= from && $0.0 < to }.map(\.1)
        return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
    }

    /// A moving mean over `window` seconds ending at each sample.
    public func smoothed(window: Double) -> Series {
        var s = Series(name: name, unit: unit, quantity: quantity)
        var start = 0, sum = 0.0
        for i in times.indices {
            sum += values[i]
            while times[i] - times[start] >= window - 1e-9 && start < i { sum -= values[start]; start += 1 }
            s.times.append(times[i]); s.values.append(sum / Double(i - start + 1))
        }
        return s
    }
}

/// What a fault did to a workload's throughput, and how long it took to recover.
public struct Impact: Codable, Sendable, Equatable {
    public var series: String
    /// Mean throughput in the `baseline` seconds before the fault, during it, and in the
    /// seconds after the link returned until the end of the window looked at.
    public var before: Double?
    public var during: Double?
    public var after: Double?
    /// Seconds from the link's return until throughput is back to `threshold` of `before`
    /// (see `Recovery`); nil when it never got there before the run (or the next fault) ended.
    public var recoverySeconds: Double?
    /// Where `before` began: 5 s before the fault, or later when an earlier fault was reverted
    /// within those 5 s (its outage and recovery are no baseline). Absent in older files.
    public var baselineFrom: Double?
}

/// Recovery time, as this project defines it: the time from the moment the link returns (the
/// fault's revert, as it happened) until the throughput, smoothed over a 1 s moving mean, first
/// reaches 95 % of its mean over the 5 s before the fault began. Samples are 100 ms apart, so the
/// time is resolved to 100 ms.
public enum Recovery {
    public static let threshold = 0.95
    public static let baselineSeconds = 5.0
    public static let smoothingSeconds = 1.0

    /// `notBefore`: the baseline starts no earlier (the end of an earlier fault).
    public static func impact(of s: Series, faultStart: Double, faultEnd: Double, until: Double, notBefore: Double = 0) -> Impact {
        let from = min(faultStart, max(0, faultStart - baselineSeconds, notBefore))
        let before = faultStart - from >= 0.5 ? s.mean(from: from, to: faultStart) : nil
        let during = s.mean(from: faultStart, to: faultEnd)
        let after = s.mean(from: faultEnd, to: until)
        var recovery: Double?
        if let before, before > 0 {
            let smooth = s.smoothed(window: smoothingSeconds)
            for (t, v) in zip(smooth.times, smooth.values) where t >= faultEnd && t <= until {
                if v >= threshold * before { recovery = max(0, t - faultEnd); break }
            }
        }
        return Impact(series: s.name, before: before, during: during, after: after, recoverySeconds: recovery, baselineFrom: from)
    }
}

/// Mean, median and standard deviation of a metric across repetitions.
public struct Summary: Codable, Sendable, Equatable {
    public var mean: Double
    public var median: Double
    public var standardDeviation: Double
    public var count: Int

    public init?(_ xs: [Double]) {
        guard !xs.isEmpty else { return nil }
        count = xs.count
        let m = xs.reduce(0, +) / Double(xs.count)
        mean = m
        let sorted = xs.sorted()
        median = xs.count % 2 == 1 ? sorted[xs.count / 2] : (sorted[xs.count / 2 - 1] + sorted[xs.count / 2]) / 2
        standardDeviation = xs.count > 1 ? (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)).squareRoot() : 0
    }
}
