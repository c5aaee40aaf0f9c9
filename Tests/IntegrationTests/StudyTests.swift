import Foundation
import Testing

/// `pathbed study` for real: two variants of a one-link lab (5 and 10 Mbit/s), two runs each;
/// the same command again keeps what is done and runs only what is missing.
extension LabTests {
    @Test func aStudyRunsEveryVariantComparesThemAndResumes() throws {
        let before = try hostSnapshot()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pb-study-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir); _ = try? pb("down", "pbstudy") }
        let base = root.appendingPathComponent("Tests/Fixtures/study-base.yaml").path
        let file = "\(dir)/rates.yaml"
        try "study: rates\nbase: \(base)\nrepeat: 3\nvary:\n  - { path: profiles.line.rate, values: [5mbit, 10mbit] }\n".write(toFile: file, atomically: true, encoding: .utf8)
        let out = "\(dir)/out"
        let r = try run([pathbed, "study", file, "--out", out, "--no-verify"], timeout: 300)
        #expect(r.status == 0, "\(r.out.suffix(2000)) \(r.err.suffix(2000))")
        for v in 1...2 { for k in 1...3 { #expect(FileManager.default.fileExists(atPath: "\(out)/variant-\(v)/rep-\(k)/results.json"), "variant \(v) run \(k)") } }
        // Each variant's throughput is its rate's (TCP's goodput: 91-97 % of it), and the study says they differ.
        let csv = try String(contentsOfFile: "\(out)/study.csv", encoding: .utf8)
        func mean(_ variant: String) -> Double? {
            csv.split(separator: "\r\n").first { $0.hasPrefix("\"bulk throughput mean Mbit/s\",\"\(variant)\"") }.flatMap { Double($0.split(separator: ",")[3]) }
        }
        let slow = try #require(mean("rate=5mbit")), fast = try #require(mean("rate=10mbit"))
        #expect(slow > 4.3 && slow < 5.1 && fast > 8.6 && fast < 10.2, "\(slow) \(fast)")
        // Halving the rate is a difference Welch's test sees with 3 runs a side (it missed it once with 2).
        #expect(csv.contains("\"rate=10mbit\",3,") && csv.contains("\"differs"), "\(csv.prefix(800))")
        #expect(FileManager.default.fileExists(atPath: "\(out)/comparison.json") && FileManager.default.fileExists(atPath: "\(out)/throughput.svg"))
        // Again: nothing to run. With one run's results gone: only that one runs.
        let again = try run([pathbed, "study", file, "--out", out, "--no-verify"], timeout: 120)
        #expect(again.status == 0 && again.out.contains("6 runs kept from before, 0 run now"), "\(again.out.suffix(500))")
        try FileManager.default.removeItem(atPath: "\(out)/variant-2/rep-1/results.json")
        let resumed = try run([pathbed, "study", file, "--out", out, "--no-verify"], timeout: 120)
        #expect(resumed.status == 0 && resumed.out.contains("5 runs kept from before, 1 run now"), "\(resumed.out.suffix(500))")
        // A different study in the same directory is refused before anything runs.
        try "study: rates\nbase: \(base)\nrepeat: 4\nvary:\n  - { path: profiles.line.rate, values: [5mbit, 10mbit] }\n".write(toFile: file, atomically: true, encoding: .utf8)
        let other = try run([pathbed, "study", file, "--out", out, "--no-verify"], timeout: 60)
        #expect(other.status != 0 && other.err.contains("holds another study"), "\(other.err)")
        #expect(try hostSnapshot() == before, "the study removed its labs")
    }
}
