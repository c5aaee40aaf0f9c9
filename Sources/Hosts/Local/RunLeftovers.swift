import Foundation
import Netlink
import Planning
import TopologyModel

/// The transfer workload's files and the packet captures' files, left in /tmp when their run was
/// killed: directories named `pathbed-transfer-LAB-N.XXXXXX` or `pathbed-capture-LAB-N.XXXXXX`
/// that are root's own 0700 directories (as `mktemp -d` made them), holding only regular files.
/// Anything else by those names is left alone.
enum RunLeftovers {
    static func remove(lab: String) {
        guard LabName.problem(lab) == nil else { return }
        for stem in [Ownership.transferDirectoryStem(lab: lab), Ownership.captureDirectoryStem(lab: lab)] { remove(stem: stem) }
    }

    private static func remove(stem: String) {
        for name in Directory.names(in: "/tmp") ?? [] {
            let path = "/tmp/\(name)"
            guard path.hasPrefix(stem) else { continue }
            // N.XXXXXX: the workload's index, and what mktemp added (another lab's name goes on with a dash).
            let rest = path.dropFirst(stem.count).split(separator: ".", omittingEmptySubsequences: false)
            guard rest.count == 2, !rest[0].isEmpty, rest[0].allSatisfy(\.isNumber), rest[1].count == 6 else { continue }
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == 0, (st.st_mode & 0o777) == 0o700,
                  let files = Directory.names(in: path) else { continue }
            let regular = files.allSatisfy { f in var fs = stat(); return lstat("\(path)/\(f)", &fs) == 0 && (fs.st_mode & S_IFMT) == S_IFREG }
            guard regular else { continue }
            for f in files { unlink("\(path)/\(f)") }
            rmdir(path)
        }
    }
}

