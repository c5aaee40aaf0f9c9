/// How a lab marks the kernel objects it creates, so that `down` and `status` touch only those.
///
/// - Namespaces are named `pb.LAB` (the lab's bridges) and `pb.LAB.NODE`, and the loopback of
///   each carries the alias `pathbed lab LAB`, set right after the namespace is created. A
///   namespace with the right name but without the tag was not made by this lab: it is left alone.
/// - Every link the lab creates carries the lab's device group (`ip link show group N`).
public enum Ownership {
    public static let namespacePrefix = "pb."

    public static func namespaceTag(lab: String) -> String { "pathbed lab \(lab)" }

    /// A device group per lab, from its name: never 0 (the kernel's default group).
    public static func group(lab: String) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for b in lab.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return (h & 0x7FFF_FFFF) | 0x1000_0000
    }

    /// True when `namespace` is named as one of `lab`'s: `pb.LAB` or `pb.LAB.NODE` (node names hold no dots).
    public static func isNamed(_ namespace: String, lab: String) -> Bool {
        let base = namespacePrefix + lab
        if namespace == base { return true }
        guard namespace.hasPrefix(base + ".") else { return false }
        let node = namespace.dropFirst(base.count + 1)
        return !node.isEmpty && !node.contains(".")
    }

    /// The lab a namespace name belongs to, if it is named like a lab's.
    public static func lab(ofNamespace namespace: String) -> String? {
        guard namespace.hasPrefix(namespacePrefix) else { return nil }
        let parts = namespace.dropFirst(namespacePrefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let lab = parts.first, !lab.isEmpty else { return nil }
        return String(lab)
    }

    /// Where the transfer workload makes its files' directory (`mktemp -d` adds the workload's
    /// index and `.XXXXXX`); `down` removes what a killed run left there, and nothing else.
    public static func transferDirectoryStem(lab: String) -> String { "/tmp/pathbed-transfer-\(lab)-" }
    /// A run's packet capture directories on a host: `STEM` + the capture's index + `.XXXXXX`.
    public static func captureDirectoryStem(lab: String) -> String { "/tmp/pathbed-capture-\(lab)-" }
}
