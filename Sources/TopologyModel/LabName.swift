/// The rules for a lab's name, shared by the file format and every command that takes one.
///
/// A lab's name becomes part of kernel object names (`pb.LAB.NODE` namespaces) and of state
/// file names, so it is checked wherever it enters: `down laba.h1`, `down ''` or `down '*'`
/// are refused before anything is looked up.
public enum LabName {
    public static let pattern = "^[a-z0-9][a-z0-9-]{0,23}$"
    public static let maxLength = 24
    public static let rule = "lower-case letters, digits and '-', at most 24 characters, starting with a letter or digit"

    /// Nil when `name` is a valid lab name, else why not.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "a lab name cannot be empty" }
        guard name.utf8.count <= maxLength,
              let first = name.unicodeScalars.first, ("a"..."z").contains(first) || ("0"..."9").contains(first),
              name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" })
        else { return "'\(name)' is not a lab name (\(rule))" }
        return nil
    }
}
