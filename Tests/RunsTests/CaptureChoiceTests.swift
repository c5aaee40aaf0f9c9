import Foundation
@testable import Runs
import Testing
import TopologyModel

/// What a run captures: the file's `capture: true` links and `run: { capture-snaplen,
/// capture-limit }`, with `--capture`, `--snaplen`, `--capture-limit` and `--no-capture` on top.
@Suite struct CaptureChoiceTests {
    func lab(_ extra: String = "", marked: Bool = true) throws -> Topology {
        try TopologyLoader.load(data: Data("""
            name: capchoice
            nodes: { a: {}, r: {}, b: {} }
            links:
              - { name: p1, endpoints: [a:eth0, r:eth0], subnet: 10.0.0.0/30\(marked ? ", capture: true" : "") }
              - { name: p2, endpoints: [r:eth1, b:eth0], subnet: 10.0.1.0/30 }
            \(extra)
            """.utf8), file: "capchoice.yaml")
    }

    @Test func theFilesLinksAreCapturedWithItsSettingsAndTheCommandLineAddsAndWins() throws {
        let t = try lab("run: { capture-snaplen: 200, capture-limit: 7, capture-filter: \"tcp port 5201\" }")
        #expect(t.links.map(\.capture) == [true, false])
        var o = RunController.Options(outDirectory: "x")
        #expect(CaptureOptions.effective(t, o) == CaptureOptions(links: ["p1"], snaplen: 200, limitBytes: 7_000_000, filter: "tcp port 5201"))
        o.captureFilter = "tcp[tcpflags] & tcp-syn != 0"
        #expect(CaptureOptions.effective(t, o)?.filter == "tcp[tcpflags] & tcp-syn != 0", "the command line's filter wins")
        o.captureFilter = nil
        o.capture = CaptureOptions(links: ["p2", "p1"])
        #expect(CaptureOptions.effective(t, o)?.links == ["p1", "p2"], "the file's first, each once")
        o.captureSnaplen = 96; o.captureLimitBytes = 100_000
        #expect(CaptureOptions.effective(t, o) == CaptureOptions(links: ["p1", "p2"], snaplen: 96, limitBytes: 100_000, filter: "tcp port 5201"))
        o.capture = CaptureOptions(links: nil)
        #expect(CaptureOptions.effective(t, o)?.links == nil, "--capture all: every link")
        o.capture = nil; o.noCapture = true
        #expect(CaptureOptions.effective(t, o) == nil, "--no-capture: not even the file's")
    }

    @Test func nothingMarkedAndNothingAskedCapturesNothing() throws {
        let t = try lab(marked: false)
        #expect(CaptureOptions.effective(t, RunController.Options(outDirectory: "x")) == nil)
        var o = RunController.Options(outDirectory: "x")
        o.capture = CaptureOptions(links: ["p2"])
        #expect(CaptureOptions.effective(t, o) == CaptureOptions(links: ["p2"], snaplen: 128, limitBytes: 20_000_000))
    }
}
