import Foundation

/// Reads a file given from outside (an inventory, a journal) only when it is a regular file of a
/// bounded size: a FIFO would block the read, /dev/zero would never end.
public enum RegularFile {
    /// The file's bytes, or why they cannot be had.
    public static func read(_ path: String, limit: Int) -> Result<Data, RegularFileError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(RegularFileError(why: String(cString: strerror(errno)))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(RegularFileError(why: String(cString: strerror(errno)))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            return .failure(RegularFileError(why: (st.st_mode & S_IFMT) == S_IFDIR ? "it is a directory" : "it is not a regular file"))
        }
        guard st.st_size <= limit else { return .failure(RegularFileError(why: "it is larger than \(limit) bytes")) }
        var data = Data(count: Int(st.st_size))
        var total = 0
        while total < data.count {
            let n = data.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            total += n
        }
        return .success(data.prefix(total))
    }
}

public struct RegularFileError: Error, CustomStringConvertible {
    public var why: String
    public var description: String { why }
}
