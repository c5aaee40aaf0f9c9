import NetlinkTypes
import TopologyModel

/// Queue lengths that follow the bandwidth-delay product, and token buckets that follow the
/// kernel's timer tick.
///
/// - netem holds every packet for its delay, so its limit must cover `rate x (delay + jitter)`
///   in packets, plus a standing queue.
/// - the standing queue is one bandwidth-delay product (`rate x RTT`, RTT taken as twice this
///   direction's delay), enough for one TCP flow to keep the link busy, and never below 5 ms of
///   the rate or 8 packets, so that links without delay still absorb a burst. (A 64-packet floor
///   held 0.78 s at 1 Mbit/s, where TCP then got 74 % of the rate, and added up to 39 ms of
///   queueing each way at 20 Mbit/s.)
/// - tbf's byte fifo holds at least its bucket plus a frame: tbf passes a packet that fits the
///   bucket (a 64 KB GSO packet at 100 Mbit/s) whole to the fifo, which otherwise drops it
///   (measured: 0.3 Mbit/s of 100).
/// - without a rate, 1 Gbit/s is assumed, about what veth carries on a small machine.
/// - a token bucket (tbf burst, htb burst and cburst) holds what the rate sends in two timer
///   ticks of a 250 Hz kernel (8 ms), never less than two full frames. A bucket smaller than one
///   tick's worth loses throughput: measured at 20 Mbit/s, htb with a 3,028-byte bucket gave
///   18.3-18.7 Mbit/s, with 20,000 bytes 19.0 (netem's own rate: 19.0).
///
/// Every figure is computed in floating point and clamped to what the kernel's fields hold,
/// so no profile that validates can overflow here.
public enum QueueSizing {
    public static let minimumPackets = 8
    /// A standing queue holds at least this much of the rate (links without delay still absorb a burst).
    public static let standingFloorSeconds = 0.005
    public static let assumedUnlimitedRate: UInt64 = 1_000_000_000
    /// Two ticks of a 250 Hz kernel.
    public static let bucketSeconds = 0.008
    /// libnl passes queue and bucket sizes as signed 32-bit integers.
    static let fieldMax = Double(Int32.max)

    static func clamp(_ v: Double) -> UInt32 { UInt32(min(max(v.rounded(.up), 0), fieldMax)) }

    /// Bucket bytes for a rate (bits per second) and an MTU.
    public static func burstBytes(rateBitsPerSecond: UInt64, mtu: Int) -> UInt32 {
        let frame = Double(mtu + 14)
        return clamp(max(2 * frame, Double(rateBitsPerSecond) / 8 * bucketSeconds))
    }

    public static func qdisc(for p: LinkProfile, mtu: Int) -> QdiscSpec? {
        guard p.rate != nil || p.needsNetem else { return nil }
        let frame = Double(mtu + 14)
        let rate = Double(p.rate?.bitsPerSecond ?? assumedUnlimitedRate)
        let oneWaySeconds = Double((p.delay?.nanoseconds ?? 0) + (p.jitter?.nanoseconds ?? 0)) / 1e9
        let packetsPerSecond = rate / 8 / frame
        let inFlight = (oneWaySeconds * packetsPerSecond).rounded(.up)
        let standing = max(Double(minimumPackets), (2 * oneWaySeconds * packetsPerSecond).rounded(.up), (standingFloorSeconds * packetsPerSecond).rounded(.up))
        let limitPackets = clamp(p.queueLimit.map(Double.init) ?? (inFlight + standing))

        var rateBits: UInt64?, burst: UInt32?, limitBytes: UInt32?
        if let r = p.rate {
            rateBits = r.bitsPerSecond
            burst = burstBytes(rateBitsPerSecond: r.bitsPerSecond, mtu: mtu)
            // tbf hands a packet that fits its bucket (a 64 KB GSO packet at high rates) whole to
            // its byte fifo: the fifo must hold one, or every such packet is dropped.
            limitBytes = clamp(max((p.queueLimit.map(Double.init) ?? standing) * frame, Double(burst ?? 0) + frame))
        }
        var netem: NetemParameters?
        if p.needsNetem {
            var n = NetemParameters(limitPackets: limitPackets)
            n.delayMicroseconds = UInt32(clamping: p.delay?.microseconds ?? 0)
            n.jitterMicroseconds = UInt32(clamping: p.jitter?.microseconds ?? 0)
            n.delayCorrelation = p.delayCorrelation?.value
            n.distribution = p.distribution?.rawValue
            switch p.loss {
            case let .random(pct, corr)?: n.loss = pct.value; n.lossCorrelation = corr?.value
            case let .gilbertElliott(pp, r, bad, good)?: n.gemodel = [pp.value, r.value, bad.value, good.value]
            case nil: break
            }
            n.duplicate = p.duplicate?.value
            n.corrupt = p.corrupt?.value
            n.reorder = p.reorder?.percent.value
            n.reorderCorrelation = p.reorder?.correlation?.value
            n.gap = p.reorder?.gap.map { UInt32(clamping: $0) }
            netem = n
        }
        return QdiscSpec(profile: p.name, rateBitsPerSecond: rateBits, burstBytes: burst, limitBytes: limitBytes, netem: netem)
    }
}
