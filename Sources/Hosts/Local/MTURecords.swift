import Foundation
import Planning

/// The host interfaces whose MTU a lab raised (a tunnel's underlay), each with its MTU before,
/// kept on the host itself beside the journals (`mtus/INTERFACE`). Raising an underlay's MTU is
/// the one change Pathbed makes to something no lab created; putting it back is allowed only
/// where such a record says it was Pathbed's doing, and only to the value it had before, so that
/// no request (an agent's `restoreMTUs`) can set the MTU of an interface Pathbed never touched.
enum MTURecords {
    static var directory: String { PrivateDirectory.labs + "/mtus" }

    /// The MTUs a link can have: IPv4's minimum for a router's links, and the largest the kernel takes.
    static let range: ClosedRange<UInt32> = 576...65535

    /// An interface name as the kernel takes it (also: a file name here, never a path).
    static func isInterfaceName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 15 && name != "." && name != ".." && !name.contains("/")
            && name.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != ":" && $0 != "%" }
    }

    /// Records `mtu` as the interface's MTU before a lab raised it, unless one is recorded already
    /// (a second lab over the same underlay: the first value is the one to go back to).
    static func record(_ interface: String, before mtu: UInt32) throws(LabError) {
        guard isInterfaceName(interface) else { throw LabError("'\(interface)' is not an interface name") }
        try PrivateDirectory.prepare(directory)
        let path = directory + "/" + interface
        guard !FileManager.default.fileExists(atPath: path) else { return }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LabError("cannot record the MTU of \(interface) in \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let text = "\(mtu)\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }

    /// The MTU recorded for `interface`, or nil when no lab raised it.
    static func recorded(_ interface: String) -> UInt32? {
        guard isInterfaceName(interface) else { return nil }
        let fd = open(directory + "/" + interface, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size < 32 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buffer, 31)
        guard n > 0, let v = UInt32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
              (68...(1 << 20)).contains(v) else { return nil }  // any MTU an interface may have had
        return v
    }

    static func forget(_ interface: String) {
        guard isInterfaceName(interface) else { return }
        unlink(directory + "/" + interface)
    }
}
