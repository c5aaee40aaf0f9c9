import Foundation
import Planning
import TopologyModel

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

    /// A record: the MTU before any lab raised the interface, and the labs that need it raised.
    struct Record: Equatable {
        var before: UInt32
        /// Empty in records of releases before (any lab's `down` put it back).
        var holders: [String]
    }

    /// Records that `lab` needs the interface raised: its MTU before (`mtu`) unless one is recorded
    /// already (a second lab over the same underlay: the first value is the one to go back to).
    static func hold(_ interface: String, before mtu: UInt32, lab: String) throws(LabError) {
        guard isInterfaceName(interface) else { throw LabError("'\(interface)' is not an interface name") }
        try PrivateDirectory.prepare(directory)
        var r = read(interface) ?? Record(before: mtu, holders: [])
        if !r.holders.contains(lab) { r.holders.append(lab) }
        try write(interface, r)
    }

    /// The MTU recorded for `interface`, or nil when no lab raised it.
    static func recorded(_ interface: String) -> UInt32? { read(interface)?.before }

    /// Takes `lab` off the interface's record. The MTU to put back when no other lab needs it
    /// raised (the record is then removed), nil while another lab does or when none was recorded.
    static func release(_ interface: String, lab: String) -> (restore: UInt32?, others: [String]) {
        guard var r = read(interface) else { return (nil, []) }
        r.holders.removeAll { $0 == lab }
        if r.holders.isEmpty { forget(interface); return (r.before, []) }
        do { try write(interface, r) } catch { return (nil, r.holders) }
        return (nil, r.holders)
    }

    /// Every interface whose record names `lab` among its holders, with its MTU before.
    static func held(by lab: String) -> [(interface: String, before: UInt32)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().filter { isInterfaceName($0) && !$0.hasSuffix(".new") }.compactMap { name in
            guard let r = read(name), r.holders.contains(lab) else { return nil }
            return (name, r.before)
        }
    }

    static func read(_ interface: String) -> Record? {
        guard isInterfaceName(interface) else { return nil }
        let fd = open(directory + "/" + interface, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size < 65536 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = Glibc.read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        let lines = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let first = lines.first, let v = UInt32(first), (68...(1 << 20)).contains(v) else { return nil }  // any MTU an interface may have had
        return Record(before: v, holders: lines.dropFirst().filter { LabName.problem($0) == nil })
    }

    static func write(_ interface: String, _ r: Record) throws(LabError) {
        try PrivateDirectory.prepare(directory)  // /run is empty after a boot
        let path = directory + "/" + interface, temporary = path + ".new"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LabError("cannot record the MTU of \(interface) in \(path): \(String(cString: strerror(errno)))") }
        let text = ([String(r.before)] + r.holders).joined(separator: "\n") + "\n"
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
        guard rename(temporary, path) == 0 else { throw LabError("cannot record the MTU of \(interface) in \(path): \(String(cString: strerror(errno)))") }
    }

    static func forget(_ interface: String) {
        guard isInterfaceName(interface) else { return }
        unlink(directory + "/" + interface)
    }
}
