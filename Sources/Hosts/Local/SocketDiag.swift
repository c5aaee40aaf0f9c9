import CShims
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A namespace's established TCP sockets, read from the kernel's INET_DIAG (NETLINK_SOCK_DIAG)
/// on a socket opened in that namespace once: two dumps (IPv4, IPv6) per reading, no process
/// started (`ss` every 100 ms cost 4.8 % of a CPU per node here).
final class SocketDiag {
    private let fd: Int32
    /// The most sockets read per family and reading.
    static let maximum = 1024
    private var buffer = [pb_socket](repeating: pb_socket(), count: SocketDiag.maximum)

    /// Nil where the kernel has no socket diagnostics (then no socket is read, and nothing fails).
    init?(nsfd: Int32) {
        let fd = pb_sockdiag_open(nsfd)
        guard fd >= 0 else { return nil }
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    /// Rounds between two readings on a host under software emulation: once a second.
    static func emulatedEvery(step: UInt64) -> Int { max(1, Int((1e9 / Double(max(step, 1))).rounded())) }

    /// The namespace's established TCP sockets (MPTCP subflows among them).
    func established(namespace: String, devices: [UInt32: String]) -> [SocketReading] {
        read(namespace: namespace, devices: devices, mptcp: false)
    }

    /// The namespace's established MPTCP connections (MPTCP_INFO: token, subflows, data-level
    /// bytes); none where the kernel has no MPTCP diagnostics.
    func connections(namespace: String, devices: [UInt32: String]) -> [SocketReading] {
        guard mptcpDiagnostics else { return [] }
        return read(namespace: namespace, devices: devices, mptcp: true)
    }

    /// Cleared at the first refused MPTCP dump (a kernel without `mptcp_diag`), so that it is not asked again.
    private var mptcpDiagnostics = true

    private func read(namespace: String, devices: [UInt32: String], mptcp: Bool) -> [SocketReading] {
        var out: [SocketReading] = []
        for family in [AF_INET, AF_INET6] {
            let n = buffer.withUnsafeMutableBufferPointer {
                mptcp ? pb_sockdiag_dump_mptcp(fd, family, $0.baseAddress, Int32(Self.maximum)) : pb_sockdiag_dump(fd, family, $0.baseAddress, Int32(Self.maximum))
            }
            if mptcp, n == -ENOENT || n == -EINVAL || n == -EOPNOTSUPP { mptcpDiagnostics = false; return [] }
            guard n > 0 else { continue }
            for s in buffer.prefix(Int(n)) {
                var r = SocketReading(namespace: namespace, local: Self.text(s.src, family: s.family), localPort: Int(s.sport),
                                      remote: Self.text(s.dst, family: s.family), remotePort: Int(s.dport),
                                      device: s.ifindex == 0 ? nil : devices[s.ifindex] ?? "if\(s.ifindex)",
                                      token: s.has_token != 0 ? s.token : nil, cwnd: s.cwnd, srttMicroseconds: s.srtt_us,
                                      retransmits: s.total_retrans, bytesAcked: s.bytes_acked, bytesReceived: s.bytes_received)
                if s.is_mptcp != 0 { r.subflows = Int(s.subflows); r.byteCounters = s.byte_counters != 0 }
                out.append(r)
            }
        }
        return out
    }

    /// An address as text; an IPv4-mapped IPv6 one (a server listening on `::`) as IPv4.
    static func text(_ raw: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8), family: UInt8) -> String {
        let b = withUnsafeBytes(of: raw) { Array($0) }
        if Int32(family) == AF_INET { return "\(b[0]).\(b[1]).\(b[2]).\(b[3])" }
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return "\(b[12]).\(b[13]).\(b[14]).\(b[15])" }
        var chars = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard b.withUnsafeBytes({ p in inet_ntop(AF_INET6, p.baseAddress, &chars, socklen_t(chars.count)) }) != nil else { return "?" }
        return String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
