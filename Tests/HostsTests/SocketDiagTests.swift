import Foundation
import Testing
@testable import Hosts
#if canImport(Glibc)
import Glibc
#endif

/// The sockets INET_DIAG gives: a real TCP connection over loopback, its bytes and ports.
@Suite struct SocketDiagTests {
    /// A listener on 127.0.0.1 (protocol 0: TCP, 262: MPTCP), a client connected to it, and the
    /// accepted socket: (listener, client, server, port); nil where the kernel refuses the protocol.
    static func loopbackPair(_ proto: Int32) throws -> (listener: Int32, client: Int32, server: Int32, port: Int)? {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), proto)
        guard listener >= 0 else { return nil }
        var addr = sockaddr_in(); addr.sin_family = sa_family_t(AF_INET); addr.sin_addr.s_addr = inet_addr("127.0.0.1"); addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        try #require(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) } } == 0)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        listen(listener, 1)
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), proto)
        try #require(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, len) } } == 0)
        return (listener, client, accept(listener, nil, nil), Int(UInt16(bigEndian: addr.sin_port)))
    }

    @Test func aConnectionsBytesAndPortsAreRead() throws {
        let diag = try #require(SocketDiag(nsfd: -1), "NETLINK_SOCK_DIAG opens (every Linux since 3.3)")
        // A listener on 127.0.0.1, a client, 200 kB from the client.
        let (listener, client, server, port) = try #require(try Self.loopbackPair(0))
        defer { close(listener); close(client); close(server) }
        let chunk = [UInt8](repeating: 7, count: 200_000)
        var sent = 0
        while sent < chunk.count { let n = chunk[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) }; try #require(n > 0); sent += n }
        var sink = [UInt8](repeating: 0, count: 65536), got = 0
        while got < chunk.count { let n = recv(server, &sink, sink.count, 0); try #require(n > 0); got += n }
        usleep(50_000)  // the last ACK
        let sockets = diag.established(namespace: "here", devices: [:])
        let c = try #require(sockets.first { $0.remotePort == port && $0.remote == "127.0.0.1" }, "\(sockets.map { "\($0.local):\($0.localPort) > \($0.remote):\($0.remotePort)" })")
        // tcpi_bytes_acked counts the SYN (RFC 4898), bytes_received does not.
        #expect(c.bytesAcked == 200_001 && c.bytesReceived == 0 && c.cwnd >= 1 && c.token == nil, "\(c)")
        let s = try #require(sockets.first { $0.localPort == port })
        #expect(s.bytesReceived == 200_000 && s.remotePort == c.localPort && s.namespace == "here")
        #expect(SocketDiag.text((0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 3, 2), family: UInt8(AF_INET6)) == "10.0.3.2")
        #expect(SocketDiag.text((0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), family: UInt8(AF_INET6)) == "2001:db8::1")
    }

    /// An MPTCP connection over loopback: MPTCP_INFO gives its token (its subflow's), its one
    /// subflow and its data-level bytes.
    @Test func anMPTCPConnectionsDataLevelIsRead() throws {
        let diag = try #require(SocketDiag(nsfd: -1))
        guard let (listener, client, server, port) = try Self.loopbackPair(262) else {
            print("SKIPPED (LOUDLY): anMPTCPConnectionsDataLevelIsRead: this kernel refuses MPTCP sockets (errno \(errno))")
            return
        }
        defer { close(listener); close(client); close(server) }
        let chunk = [UInt8](repeating: 7, count: 300_000)
        let first = diag.connections(namespace: "here", devices: [:]).first { $0.remotePort == port }
        var sent = 0
        while sent < chunk.count { let n = chunk[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) }; try #require(n > 0); sent += n }
        var sink = [UInt8](repeating: 0, count: 65536), got = 0
        while got < chunk.count { let n = recv(server, &sink, sink.count, 0); try #require(n > 0); got += n }
        // The last DATA_ACK can come late on a loaded machine (CI once read 255,947 of 300,000
        // bytes acknowledged 100 ms after the server had them all): read until it is there, 5 s at most.
        let before = try #require(first, "the connection was read before it sent")
        var connections = diag.connections(namespace: "here", devices: [:])
        for _ in 0..<50 {
            if let c = connections.first(where: { $0.remotePort == port }), c.bytesAcked &- before.bytesAcked >= 300_000 { break }
            usleep(100_000)
            connections = diag.connections(namespace: "here", devices: [:])
        }
        let c = try #require(connections.first { $0.remotePort == port }, "\(connections)")
        #expect(c.subflows == 1 && c.token != nil && c.token == before.token, "\(c)")
        #expect(c.bytesAcked &- before.bytesAcked == 300_000, "data acknowledged at the MPTCP level: \(c.bytesAcked &- before.bytesAcked)")
        // The subflow under it carries the same token, and is no connection.
        let subflow = try #require(diag.established(namespace: "here", devices: [:]).first { $0.remotePort == port })
        #expect(subflow.token == c.token && subflow.subflows == nil)
        let s = try #require(connections.first { $0.localPort == port })
        #expect(s.subflows == 1 && s.token != nil && s.token != c.token, "the server's end has a token of its own: \(s)")
    }
}
