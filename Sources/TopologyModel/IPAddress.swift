#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address, held as a 128-bit number so that subnets can be counted.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public enum Family: String, Sendable, Codable { case ipv4, ipv6 }
    public var family: Family
    public var value: UInt128

    public init(family: Family, value: UInt128) { self.family = family; self.value = value }

    public var bitWidth: Int { family == .ipv4 ? 32 : 128 }
    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        (a.family == .ipv4 ? 0 : 1, a.value) < (b.family == .ipv4 ? 0 : 1, b.value)
    }

    public init?(_ text: String) {
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            var v: UInt128 = 0
            withUnsafeBytes(of: &raw) { for b in $0 { v = (v << 8) | UInt128(b) } }
            self.init(family: .ipv6, value: v)
        } else {
            // inet_pton refuses the shorthand forms ("10.1") that inet_aton would take.
            var raw = in_addr()
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            self.init(family: .ipv4, value: UInt128(UInt32(bigEndian: raw.s_addr)))
        }
    }

    /// Network-order bytes, as netlink wants them.
    public var bytes: [UInt8] {
        let n = bitWidth / 8
        return (0..<n).map { UInt8(truncatingIfNeeded: value >> UInt128(8 * (n - 1 - $0))) }
    }

    public var description: String {
        if family == .ipv4 {
            return bytes.map(String.init).joined(separator: ".")
        }
        var raw = in6_addr()
        let b = bytes
        withUnsafeMutableBytes(of: &raw) { for i in 0..<16 { $0[i] = b[i] } }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func adding(_ n: UInt128) -> IPAddress? {
        let (sum, overflow) = value.addingReportingOverflow(n)
        guard !overflow, family == .ipv6 || sum <= UInt128(UInt32.max) else { return nil }
        return IPAddress(family: family, value: sum)
    }
}

/// An address with a prefix length: `10.0.1.0/24` as a subnet, or `10.0.1.1/24` as an interface address.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int

    public init(address: IPAddress, prefixLength: Int) { self.address = address; self.prefixLength = prefixLength }

    /// Parses `ADDR/LEN`. With `requirePrefix: false`, a bare address gets a host prefix.
    public init?(_ text: String, requirePrefix: Bool = true) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let addr = IPAddress(String(parts[0])) else { return nil }
        if parts.count == 1 {
            guard !requirePrefix else { return nil }
            self.init(address: addr, prefixLength: addr.bitWidth)
            return
        }
        guard let len = Int(parts[1]), len >= 0, len <= addr.bitWidth, !parts[1].hasPrefix("+") else { return nil }
        self.init(address: addr, prefixLength: len)
    }

    public var family: IPAddress.Family { address.family }
    public var description: String { "\(address)/\(prefixLength)" }

    var hostBits: Int { address.bitWidth - prefixLength }
    var mask: UInt128 {
        let width = address.bitWidth
        let all: UInt128 = width == 128 ? ~0 : (UInt128(1) << UInt128(width)) - 1
        return hostBits >= 128 ? 0 : (all >> UInt128(hostBits)) << UInt128(hostBits) & all
    }

    /// The network itself: host bits cleared.
    public var network: IPNetwork {
        IPNetwork(address: IPAddress(family: family, value: address.value & mask), prefixLength: prefixLength)
    }

    public var isNetworkAddress: Bool { address.value & ~mask == 0 }

    public func contains(_ a: IPAddress) -> Bool {
        a.family == family && (a.value & mask) == (address.value & mask)
    }

    public func overlaps(_ other: IPNetwork) -> Bool {
        guard family == other.family else { return false }
        let shorter = prefixLength <= other.prefixLength ? self : other
        let longer = prefixLength <= other.prefixLength ? other : self
        return shorter.contains(longer.address)
    }

    /// Addresses an interface may use: for IPv4 all but the network and broadcast address
    /// (both usable in a /31), for IPv6 all but the subnet-router anycast address.
    public var usableHosts: (first: IPAddress, count: UInt128) {
        let base = address.value & mask
        let size: UInt128 = hostBits >= 128 ? UInt128.max : UInt128(1) << UInt128(hostBits)
        if family == .ipv4 && prefixLength >= 31 { return (IPAddress(family: family, value: base), size) }
        if family == .ipv4 { return (IPAddress(family: family, value: base + 1), size - 2) }
        return (IPAddress(family: family, value: base + 1), size - 1)
    }
}

// Addresses cross the agent's wire and sit in journals as their usual text, and are checked
// again when read: a corrupt or hostile file cannot smuggle in something that is not an address.
protocol CodableAsText: Codable, CustomStringConvertible {
    init?(parsing text: String)
}

extension CodableAsText {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not \(Self.self)"))
        }
        self = value
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension IPAddress: CodableAsText { init?(parsing text: String) { self.init(text) } }
extension IPNetwork: CodableAsText { init?(parsing text: String) { self.init(text) } }
