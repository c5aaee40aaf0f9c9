import Engine
import Planning
import Foundation
import Report
import TopologyModel

/// Runs a study (docs/studies.md): every variant of the base topology, `repeat` runs each, into
/// one directory that the same command resumes (runs already done are kept), then one report
/// across the variants.
public struct StudyRunner: Sendable {
    public let study: StudyFile
    public let directory: String

    public init(study: StudyFile, directory: String) { self.study = study; self.directory = directory }

    /// What the directory holds of the study, so that a resumed study is the same study.
    struct Manifest: Codable, Equatable {
        var format = "pathbed-study"
        var version = 1
        var study: String
        var base: String
        var repeats: Int
        var variants: [String]
        /// FNV-1a of the base file's text and the `set:` settings: a run kept from before must
        /// come from the same lab (absent in directories of releases before).
        var baseDigest: String?

        /// The same study, the digest aside where the directory has none.
        func sameStudy(as other: Manifest) -> Bool {
            var a = self, b = other
            if a.baseDigest == nil || b.baseDigest == nil { a.baseDigest = nil; b.baseDigest = nil }
            return a == b
        }
    }

    /// FNV-1a (64 bits) of the base's text and the fixed settings, as hex.
    var baseDigest: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in (study.baseText + "\u{0}" + study.fixed.map { "\($0.path)=\($0.value)" }.joined(separator: "\u{0}")).utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", h)
    }

    /// Every variant written (variants/K.yaml) and validated, before anything runs: all their
    /// problems at once.
    public func prepare() throws -> [(variant: StudyFile.Variant, topology: Topology)] {
        try FileManager.default.createDirectory(atPath: "\(directory)/variants", withIntermediateDirectories: true)
        let manifest = Manifest(study: study.name, base: study.base, repeats: study.repeats, variants: study.variants.map(\.label), baseDigest: baseDigest)
        let path = "\(directory)/study.json"
        if let old = FileManager.default.contents(atPath: path) {
            if let m = try? JSONDecoder().decode(Manifest.self, from: old), m.baseDigest != nil, m.baseDigest != manifest.baseDigest,
               m.sameStudy(as: Manifest(study: manifest.study, base: manifest.base, repeats: manifest.repeats, variants: manifest.variants, baseDigest: nil)) {
                throw LabError("the base topology \(study.base) (or the study's `set:`) changed since \(directory) was begun: the runs kept there measured another lab",
                               fix: "put the base file back as it was, or give --out another directory (or remove \(directory)) to start again")
            }
            guard let m = try? JSONDecoder().decode(Manifest.self, from: old), m.sameStudy(as: manifest) else {
                throw LabError("\(directory) holds another study (or this one before its file changed): its runs would not be comparable",
                               fix: "give --out another directory, or remove \(directory) to start again")
            }
        }
        var out: [(StudyFile.Variant, Topology)] = []
        var problems: [String] = []
        for v in study.variants {
            let file = "\(directory)/variants/\(v.number).yaml"
            do {
                let text = "# \(study.name), variant \(v.number): \(v.label.replacingOccurrences(of: "\n", with: " "))\n# generated from \(study.base) by `pathbed study \(study.file)`\n" + (try study.topologyText(v))
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                out.append((v, try TopologyLoader.load(data: Data(text.utf8), file: file, pathsRelativeTo: study.base)))
            } catch {
                problems.append("variant \(v.number) (\(v.label)): \(error)")
            }
        }
        if !problems.isEmpty {
            throw LabError("the study's variants are not all valid labs (nothing was run):\n" + problems.prefix(20).joined(separator: "\n"),
                           fix: "check the paths and values of `set:` and `vary:` (the variants that could be written are in \(directory)/variants/)")
        }
        // The directory is this study's once every variant is valid (a failed check claims nothing).
        if !FileManager.default.fileExists(atPath: path) {
            let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
            try e.encode(manifest).write(to: URL(fileURLWithPath: path), options: .atomic)
        }
        return out
    }

    /// Whether a run directory holds a run that went to its end.
    static func isDone(_ dir: String) -> Bool {
        guard let r = try? RunReport.read(dir) else { return false }
        return r.endedEarly == nil
    }

    public struct Outcome: Sendable {
        public var ran: Int
        public var kept: Int
        public var problems: [String]
        public var report: String
    }

    /// Runs what is not done yet, then writes the report. `controller` gives each variant's
    /// lab controller (hosts bound as `pathbed run` binds them).
    public func run(_ variants: [(variant: StudyFile.Variant, topology: Topology)], verify: Bool,
                    controller: (Topology) throws -> LabController, progress: @escaping (String) -> Void) throws -> Outcome {
        var ran = 0, kept = 0
        var problems: [String] = []
        let total = variants.count * study.repeats
        // One study process per directory: a second one would run the same runs into other names.
        let lock = open("\(directory)/study.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard lock >= 0, flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            if lock >= 0 { close(lock) }
            throw LabError("another `pathbed study` is working in \(directory)", fix: "wait for it, or give --out another directory")
        }
        defer { close(lock) }
        for (v, t) in variants {
            let lab = try controller(t)
            // Its hosts' connections (an agent each on a remote host) end with the variant.
            defer { for e in lab.executors.values { e.close() } }
            let todo = (1...study.repeats).filter { !Self.isDone("\(directory)/variant-\(v.number)/rep-\($0)") }
            kept += study.repeats - todo.count
            for (i, k) in todo.enumerated() {
                let dir = "\(directory)/variant-\(v.number)/rep-\(k)"
                // Only real directories of its own: a symlink planted there is not followed.
                for p in ["\(directory)/variant-\(v.number)", dir] {
                    var st = stat()
                    if lstat(p, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR {
                        throw LabError("\(p) is not a directory of this study (a symlink or a file)", fix: "remove it, or give --out another directory")
                    }
                }
                try? FileManager.default.removeItem(atPath: dir)  // what an interrupted run left
                try FileManager.default.createDirectory(atPath: "\(directory)/variant-\(v.number)", withIntermediateDirectories: true)
                progress("variant \(v.number) of \(variants.count) (\(v.label)), run \(k) of \(study.repeats); \(kept + ran) of \(total) done")
                var o = RunController.Options(outDirectory: directory)
                o.directory = dir
                o.keep = i < todo.count - 1  // the lab is built once per variant
                o.callerRemovesLabOnFailure = o.keep
                o.seedOffset = k - 1
                o.verify = verify && i == 0
                if verify { o.verifyNote = i == 0 ? "measured before this variant's first run" : "verified before this variant's first run only (the lab is built once)" }
                do {
                    let outcome = try RunController(lab: lab, topology: t, options: o).run { progress("  \($0)") }
                    problems += (outcome.results.problems ?? []).map { "variant \(v.number) run \(k): \($0)" }
                    ran += 1
                } catch {
                    if i < todo.count - 1 { _ = try? lab.down(t.name) }
                    throw error
                }
            }
        }
        let report = try writeReport(variants.map(\.variant))
        // Done: the lock file goes (it is held until close).
        unlink("\(directory)/study.lock")
        return Outcome(ran: ran, kept: kept, problems: problems, report: report)
    }

    /// The report across the variants from what the directory holds (`pathbed study` writes it
    /// at the end; `pathbed report` of a study directory again).
    public func writeReport(_ variants: [StudyFile.Variant]) throws -> String {
        var sets: [(name: String, runs: [RunResults])] = []
        for v in variants {
            let dirs = (1...study.repeats).map { "\(directory)/variant-\(v.number)/rep-\($0)" }.filter(Self.isDone)
            let runs = try dirs.map { try RunReport.read($0) }
            if !runs.isEmpty { sets.append((name: v.label, runs: runs)) }
        }
        guard !sets.isEmpty else { throw LabError("no run of the study has ended yet: nothing to report") }
        let table = RunStatistics.studyTable(study: study.name, sets)
        try table.text.write(toFile: "\(directory)/study.txt", atomically: true, encoding: .utf8)
        try table.csv.write(toFile: "\(directory)/study.csv", atomically: true, encoding: .utf8)
        if sets.count > 1 { try RunStatistics.writeComparison(sets, to: directory) } else {
            try RunStatistics.tidy(sets).write(toFile: "\(directory)/tidy.csv", atomically: true, encoding: .utf8)
        }
        return table.text
    }
}
