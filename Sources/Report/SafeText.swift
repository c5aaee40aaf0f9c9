/// Text from outside (a program's output, a plugin's names, a results file) as it may be shown
/// on a terminal or written into a text file: control characters (an escape sequence sets a
/// terminal's title or clears it; a NUL cuts a line) and the characters that reorder text
/// (U+202E shows a name backwards) become `?`. Newlines and tabs stay unless `singleLine`.
public func safeText(_ s: String, singleLine: Bool = false) -> String {
    func unsafe(_ u: Unicode.Scalar) -> Bool {
        if u == "\n" { return singleLine }
        if u == "\t" { return false }
        return u.value < 0x20 || (0x7F...0x9F).contains(u.value) || (0x202A...0x202E).contains(u.value)
            || (0x2066...0x2069).contains(u.value) || u.value == 0x200E || u.value == 0x200F
    }
    guard s.unicodeScalars.contains(where: unsafe) else { return s }
    return String(String.UnicodeScalarView(s.unicodeScalars.map { unsafe($0) ? "?" : $0 }))
}
