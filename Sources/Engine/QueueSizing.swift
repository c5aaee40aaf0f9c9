import TopologyModel

/// Queue lengths that follow the bandwidth-delay product instead of a fixed 1000 packets.
///
/// - netem holds every packet for its delay, so its limit must cover `rate x (delay + jitter)`
///   in packets, plus a standing queue.
/// - the standing queue is one bandwidth-delay product (`rate x RTT`, RTT taken as twice this
///   direction's delay), enough for one TCP flow to keep the link busy, and never below
///   `minimumPackets`, so that links without delay still absorb a burst.
/// - without a rate, 1 Gbit/s is assumed, about what veth carries on a small machine.
public enum QueueSizing {
    public static let minimumPackets = 64
    public static let assumedUnlimitedRate: UInt64 = 1_000_000_000

    public static func qdisc(for p: LinkProfile, mtu: Int) -> QdiscSpec? {
        guard p.rate != nil || p.needsNetem else { return nil }
        let frame = mtu + 14
        let rate = p.rate?.bitsPerSecond ?? assumedUnlimitedRate
        let oneWayNs = (p.delay?.nanoseconds ?? 0) + (p.jitter?.nanoseconds ?? 0)
        let packetsPerNs = Double(rate) / 8 / Double(frame) / 1e9
        let inFlight = Int((Double(oneWayNs) * packetsPerNs).rounded(.up))
        let standing = max(minimumPackets, Int((Double(2 * oneWayNs) * packetsPerNs).rounded(.up)))
        let limitPackets = p.queueLimit ?? (inFlight + standing)

        var spec = QdiscSpec(profile: p.name)
        if let r = p.rate {
            spec.rateBitsPerSecond = r.bitsPerSecond
            // At least two frames, and at least 4 ms worth at the rate (a 250 Hz timer tick).
            spec.burstBytes = max(2 * frame, Int(r.bytesPerSecond / 250))
            spec.limitBytes = (p.queueLimit ?? standing) * frame
        }
        if p.needsNetem {
            var n = NetemSpec(limitPackets: limitPackets)
            n.delayMicroseconds = p.delay?.microseconds ?? 0
            n.jitterMicroseconds = p.jitter?.microseconds ?? 0
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
            n.gap = p.reorder?.gap
            spec.netem = n
        }
        return spec
    }
}
