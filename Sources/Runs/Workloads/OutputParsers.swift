import Foundation

/// A program's output, line by line, each line stamped on the run's clock when it arrived
/// (iperf3's intervals, ping's replies, `ip mptcp monitor`'s events). Bounded: at most
/// `maximumLines` lines of at most `maximumLineBytes` each are kept; the rest are counted.
final class StampedLines: @unchecked Sendable {
    static let maximumLines = 500_000
    static let maximumLineBytes = 64 << 10
    private let clock: RunClock
    private let lock = NSLock()
    private var partial = Data()
    private var lines: [(Double, String)] = []
    private var droppedLines = 0

    init(clock: RunClock) { self.clock = clock }

    func add(_ d: Data) {
        let now = clock.now
        lock.withLock {
            partial.append(d)
            while let nl = partial.firstIndex(of: 0x0A) {
                let line = partial[partial.startIndex..<nl]
                if lines.count < Self.maximumLines {
                    lines.append((now, String(decoding: line.prefix(Self.maximumLineBytes), as: UTF8.self)))
                } else {
                    droppedLines += 1
                }
                partial.removeSubrange(partial.startIndex...nl)
            }
            // A line that never ends is cut where it passes the limit.
            if partial.count > Self.maximumLineBytes {
                partial.removeAll(keepingCapacity: true)
                droppedLines += 1
            }
        }
    }

    /// Every complete line kept, with its arrival time.
    var all: [(Double, String)] { lock.withLock { lines } }

    /// Lines not kept (past the limits).
    var dropped: Int { lock.withLock { droppedLines } }
}

/// What iperf3 prints, read the one way Pathbed reads it.
public enum Iperf3Output {
    /// The rate of one 100 ms interval line, in Mbit/s: `[SUM]` lines when several streams run
    /// (`summed`), stream lines otherwise; the end-of-test summaries are not intervals.
    ///
    /// `[  5]   0.10-0.20   sec   245 KBytes  20.0 Mbits/sec` (sender lines add Retr and Cwnd).
    public static func intervalMbps(_ line: String, summed: Bool) -> Double? {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 7, f[0].hasPrefix("[") else { return nil }
        let isSum = line.hasPrefix("[SUM]")
        guard isSum == summed else { return nil }
        let rangeIndex = isSum ? 1 : (f[0] == "[" ? 2 : 1)
        guard rangeIndex + 5 < f.count else { return nil }
        let range = f[rangeIndex].split(separator: "-").compactMap { Double($0) }
        guard range.count == 2, range[1] - range[0] < 0.2, f[rangeIndex + 1] == "sec",
              let rate = Double(f[rangeIndex + 4]), rate.isFinite, rate >= 0, f[rangeIndex + 5].hasSuffix("bits/sec") else { return nil }
        let unit = f[rangeIndex + 5]
        let scale: Double = unit.hasPrefix("G") ? 1000 : unit.hasPrefix("K") ? 0.001 : unit.hasPrefix("M") ? 1 : 1e-6
        return rate * scale
    }

    /// The first `iperf3: error - ...` line of its output.
    public static func error(in output: String) -> String? {
        output.split(separator: "\n").first { $0.contains("iperf3: error") }.map(String.init)
    }

    /// What the receiver got, in Mbit/s, from iperf3's JSON report (`-J`): `end.sum_received`.
    public static func receivedMbps(json: Data) throws -> Double {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw Iperf3Error("iperf3 printed no JSON report: \(String(decoding: json.prefix(300), as: UTF8.self))")
        }
        if let e = object["error"] as? String { throw Iperf3Error("iperf3: \(e)") }
        guard let end = object["end"] as? [String: Any], let received = end["sum_received"] as? [String: Any],
              let bps = received["bits_per_second"] as? Double, bps.isFinite, bps >= 0 else {
            throw Iperf3Error("iperf3's report has no received rate (end.sum_received.bits_per_second)")
        }
        return bps / 1e6
    }

    public struct Iperf3Error: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }
}

/// What ping prints.
public enum PingOutput {
    /// `64 bytes from 10.0.3.2: icmp_seq=7 ttl=63 time=21.4 ms` → (7, 21.4).
    public static func reply(_ line: Substring) -> (sequence: Int, milliseconds: Double)? {
        guard let seqPart = line.split(separator: " ").first(where: { $0.hasPrefix("icmp_seq=") }),
              let timePart = line.split(separator: " ").first(where: { $0.hasPrefix("time=") }),
              let seq = Int(seqPart.dropFirst("icmp_seq=".count)), let ms = Double(timePart.dropFirst("time=".count)),
              ms.isFinite, ms >= 0 else { return nil }
        return (seq, ms)
    }

    /// `[1764669600.123456] 64 bytes from ...` (ping -D) → the host's realtime clock, in seconds,
    /// when the reply came; nil without one or when it is no plausible time.
    public static func stamp(_ line: Substring) -> Double? {
        guard line.hasPrefix("["), let close = line.firstIndex(of: "]"),
              let t = Double(line[line.index(after: line.startIndex)..<close]), t.isFinite, t > 0, t < 1e11 else { return nil }
        return t
    }
}
