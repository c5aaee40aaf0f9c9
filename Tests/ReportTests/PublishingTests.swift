import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Report

/// Output a paper can use: intervals and tests checked against SciPy's figures, CSVs a strict
/// reader takes, plots whose parts are where they should be.
@Suite struct PublishingTests {
    /// Student's t quantiles and CDF, against scipy.stats.t (1.17).
    @Test func studentsTMatchesSciPy() {
        for (df, q) in [(1.0, 12.706204736174694), (2, 4.302652729749462), (4, 2.7764451051977934), (9, 2.262157162798205), (30, 2.0422724563012378), (7.5, 2.333039626864974)] {
            #expect(abs(Inference.studentQuantile(0.975, df: df) - q) < 1e-7, "df \(df)")
        }
        #expect(abs(Inference.studentCDF(-2.5, df: 3.3) - 0.040026418154177235) < 1e-9)
        #expect(abs(Inference.studentCDF(0, df: 5) - 0.5) < 1e-12)
    }

    /// A mean's interval and Welch's test, against scipy.stats.t.interval and ttest_ind(equal_var=False).
    @Test func intervalsAndWelchMatchSciPy() throws {
        let a = [26.7, 28.4, 27.5, 28.0], b = [24.1, 25.0, 26.3, 23.8, 25.5]
        let ci = try #require(Inference.meanInterval(a))
        #expect(abs(ci.low - 26.484309116786587) < 1e-6 && abs(ci.high - 28.81569088321341) < 1e-6, "\(ci)")
        let w = try #require(Inference.welch(a, b))
        #expect(abs((w.t ?? 0) - -4.628816882928101) < 1e-9 && abs(w.degreesOfFreedom - 6.960775311487959) < 1e-9)
        #expect(abs(w.p - 0.0024365683207388258) < 1e-9)
        #expect(abs(w.low - -4.095982509293578) < 1e-6 && abs(w.high - -1.3240174907064162) < 1e-6)
        #expect(Inference.meanInterval([3]) == nil && Inference.welch([1], [2, 3]) == nil)
        // No spread on either side: exact.
        #expect(Inference.welch([5, 5], [5, 5])?.p == 1 && Inference.welch([5, 5], [6, 6])?.p == 0)
    }

    static func run(lab: String = "x", throughput: [Double], recoveries: [Double?], cc: String = "cubic") -> RunResults {
        var r = RunResults(pathbed: "test", lab: lab, file: "\(lab).yaml", started: Date(), durationSeconds: Double(throughput.count) / 10, hosts: ["local": .init(kernel: "6.1", hostname: "h", version: "t", clockOffsetSeconds: 0, reach: "local")], sampleIntervalSeconds: 0.1, events: [])
        r.workloads = [.init(name: "bulk", plugin: "iperf3", node: "c", target: "s", mptcp: true, started: 0, exitCode: 0, error: nil,
                             series: [Series(name: "bulk (iperf3)", unit: "Mbit/s", quantity: .throughput, times: throughput.indices.map { Double($0 + 1) / 10 }, values: throughput)])]
        r.impacts = recoveries.enumerated().map { i, rec in
            .init(event: "link-down p2 #\(i + 1)", impact: Impact(series: "bulk (iperf3)", before: 20, during: 10, after: 19, recoverySeconds: rec))
        }
        r.settings = [.init(node: "c", host: "local", congestionControl: cc, scheduler: "default", pathManager: "kernel", congestionControlFrom: "file", schedulerFrom: "host", pathManagerFrom: "host")]
        return r
    }

    /// A flap's repetitions within a run are one value (their mean); the one that never
    /// recovered is counted, not dropped.
    @Test func aFlapIsAveragedWithinItsRunAndAMissingRecoveryIsCounted() throws {
        let runs = [Self.run(throughput: [10, 10], recoveries: [1, 2, nil]), Self.run(throughput: [20, 20], recoveries: [3, 3, 3])]
        let agg = RunStatistics.aggregates(runs)
        let rec = try #require(agg.first { $0.metric == "link-down p2 / bulk: recovery s" })
        #expect(rec.values == [1.5, 3] && rec.n == 2 && rec.notRecovered == 1, "\(rec)")
        let never = RunStatistics.aggregates([Self.run(throughput: [1], recoveries: [nil])])
        #expect(never.first { $0.metric.hasSuffix("recovery s") }.map { ($0.n, $0.notRecovered) }.map { $0 == 0 && $1 == 1 } == true, "\(never)")
        #expect(RunStatistics.table(runs).contains("not recovered"))
    }

    /// B against A: a real difference, one within the noise, and what differs besides.
    @Test func aComparisonSaysWhatDiffersAndWhatIsNoise() throws {
        let a = [[20.0, 21], [22, 21], [20, 22]].map { Self.run(throughput: $0, recoveries: [1]) }
        let b = [[30.0, 31], [32, 31], [30, 32]].enumerated().map { Self.run(throughput: $0.element, recoveries: [[0.9, 1.2, 1.0][$0.offset]], cc: "bbr") }
        let c = RunStatistics.compare([("a", a), ("b", b)])
        let rows = try #require(c.against["b"])
        let tput = try #require(rows.first { $0.metric == "bulk throughput mean Mbit/s" })
        #expect(tput.verdict == "differs" && (tput.welch?.low ?? 0) > 8 && (tput.welch?.high ?? 99) < 12, "\(tput)")
        let rec = try #require(rows.first { $0.metric.hasSuffix("recovery s") })
        #expect(rec.verdict == "within noise" && (rec.welch?.p ?? 0) > 0.05, "\(rec)")
        #expect(c.notes.contains { $0.contains("settings differ") && $0.contains("c congestion control cubic against bbr") }, "\(c.notes)")
        let text = RunStatistics.comparisonText(c)
        #expect(text.contains("B against A") && text.contains("Welch"), "\(text)")
    }

    /// Every CSV Pathbed writes, read by Python's csv module in strict mode and checked for
    /// its columns; the tidy file also by row count.
    @Test func everyCSVIsReadByAStrictReader() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pathbed-csv-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = Self.run(throughput: [10, 20, 30], recoveries: [1])
        r.workloads[0].series[0].name = "dl (iperf3, \"MPTCP\")\nsecond line"
        r.interfaces = [Series(name: "c:eth0 rx", unit: "Mbit/s", quantity: .throughput, times: [0.1, 0.2], values: [1, 2])]
        try RunReport.render(r, to: dir)
        try RunStatistics.writeRepetitions([r, r], to: dir)
        // The comparison's tidy.csv is the last written: 4 runs of 3 + 2 samples, and the header.
        try RunStatistics.writeComparison([("a", [r, r]), ("b", [r, r])], to: dir)
        let check = """
            import csv, sys
            for name, columns, rows in [("series.csv", 3, 4), ("tidy.csv", 7, 21), ("aggregates.csv", 10, None), ("comparison.csv", 21, None)]:
                with open(sys.argv[1] + "/" + name, newline="") as f:
                    table = list(csv.reader(f, strict=True))
                assert all(len(row) == columns for row in table), (name, table[:3])
                assert rows is None or len(table) == rows, (name, len(table))
            print("ok")
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", check, dir]
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run(); p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 0 && out.contains("ok"), "python3's strict csv reader: \(out)")
    }

    static func parse(_ svg: String) throws -> XMLElement {
        try #require(try XMLDocument(data: Data(svg.utf8)).rootElement())
    }
    /// An attribute's value (FoundationXML's attribute(forName:) finds none under SVG's namespace).
    static func attribute(_ e: XMLElement, _ name: String) -> String? {
        (e.attributes ?? []).first { $0.name == name }?.stringValue
    }

    /// Elements by name and class, anywhere below `e` (SVG's namespace keeps XPath from them).
    static func elements(_ e: XMLElement, _ name: String, class cls: String? = nil) -> [XMLElement] {
        var out: [XMLElement] = []
        func walk(_ x: XMLElement) {
            if x.localName == name, cls == nil || attribute(x, "class") == cls { out.append(x) }
            for c in x.children ?? [] { if let c = c as? XMLElement { walk(c) } }
        }
        walk(e)
        return out
    }

    /// A bridge port that carries what a node's interface carries is one series on the plot, not two.
    @Test func aBridgePortRepeatingANodesTrafficIsLeftOut() {
        let times = (1...100).map { Double($0) / 10 }
        let node = Series(name: "router:lan0 rx", unit: "Mbit/s", quantity: .throughput, times: times, values: times.map { 20 + sin($0) })
        let port = Series(name: "bridges:proxy.eth0 rx", unit: "Mbit/s", quantity: .throughput, times: times.map { $0 + 0.01 }, values: times.map { 20.2 + sin($0) })
        let other = Series(name: "bridges:server.eth0 rx", unit: "Mbit/s", quantity: .throughput, times: times, values: times.map { 20 + 5 * cos($0) })
        let (kept, repeats) = RunReport.withoutRepeats([node, port, other])
        #expect(repeats == 1 && kept.map(\.name) == ["router:lan0 rx", "bridges:server.eth0 rx"], "\(kept.map(\.name))")
    }

    /// Throughput: every sample faint under the 1 s mean, one legend entry per workload;
    /// subflow events as ticks with a legend telling opened from closed; RTT broken at lost echoes.
    @Test func plotsDrawWhatTheySay() throws {
        var r = Self.run(throughput: (0..<300).map { $0 % 2 == 0 ? 0 : 40 }, recoveries: [])
        r.events = [.init(label: "link-down lte", kind: "link-down", planned: 10, actual: 10, applied: 10, revertPlanned: 15, revertActual: 15)]
        r.mptcpEvents = (0..<300).map { RunResults.MPTCPEvent(t: Double($0) / 10, node: "c", type: $0 % 3 == 0 ? "SF_CLOSED" : "SF_ESTABLISHED", detail: "") }
        var ping = Series(name: "rtt (ping)", unit: "ms", quantity: .rtt)
        for i in 1...200 where !(80...120).contains(i) { ping.times.append(Double(i) / 10); ping.values.append(20) }
        r.workloads.append(.init(name: "rtt", plugin: "ping", node: "c", target: "s", mptcp: false, started: 0, exitCode: 0, error: nil, series: [ping]))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pathbed-svg-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try RunReport.render(r, to: dir)
        let w = try Self.parse(String(contentsOfFile: "\(dir)/workloads.svg", encoding: .utf8))
        #expect(Self.elements(w, "polyline", class: "raw").count == 1 && Self.elements(w, "polyline", class: "series").count == 1)
        // The 1 s mean of 0/40 alternating samples stays near 20 (the raw swings 0 to 40).
        let mean = try #require(Self.elements(w, "polyline", class: "series").first.flatMap { Self.attribute($0, "points") })
        let ys = mean.split(separator: " ").compactMap { $0.split(separator: ",").last.flatMap { Double($0) } }.dropFirst(20)
        #expect((ys.max() ?? 0) - (ys.min() ?? 999) < 15, "the mean line swings: \(ys.min() ?? 0)-\(ys.max() ?? 0) px")
        let legends = Self.elements(w, "g", class: "legend").map { $0.stringValue ?? "" }
        #expect(legends.contains { $0.contains("1 s mean") } && legends.contains { $0.contains("subflow opened (200 events)") }
                && legends.contains { $0.contains("subflow closed (100 events)") }, "\(legends)")
        #expect(Self.elements(w, "g", class: "ticks").count == 2)
        // Axes: time along the bottom, the unit up the side, ticks labelled from 0.
        let texts = Self.elements(w, "text").compactMap(\.stringValue)
        #expect(texts.contains("time (s)") && texts.contains("Mbit/s") && texts.contains("0") && texts.contains("30"), "\(texts.prefix(30))")
        let rtt = try Self.parse(String(contentsOfFile: "\(dir)/rtt.svg", encoding: .utf8))
        #expect(Self.elements(rtt, "polyline", class: "series").count == 2, "one line each side of the 4 s without replies")
        // Across runs: a mean line with its band.
        let across = try #require(RunStatistics.acrossRunsPlot([("x", [r, r])], title: "t"))
        let a = try Self.parse(across)
        #expect(Self.elements(a, "polygon", class: "band").count == 1 && Self.elements(a, "polyline", class: "series").count == 1)
    }
}

/// Sockets as a sampler reads them (a join over eth2, the first subflow over eth1, both of one
/// MPTCP connection; and ssh), claimed by the workload whose port their connection uses.
@Suite struct SubflowTests {
    static func line(_ local: String, _ lport: Int, _ remote: String, _ rport: Int, device: String? = nil, token: String?, acked: UInt64) -> SocketLine {
        var l = SocketLine(localAddress: local, localPort: lport, remoteAddress: remote, remotePort: rport, device: device)
        l.token = token; l.bytesAcked = acked; l.cwnd = 14; l.srttMs = 13.7
        return l
    }
    static let client = [
        line("10.0.2.2", 44373, "10.0.3.2", 5999, device: "eth2", token: "bf767e28", acked: 1764782),
        line("10.0.1.2", 56614, "10.0.3.2", 5999, token: "bf767e28", acked: 1765945),
        line("10.0.1.2", 41000, "10.0.3.2", 22, token: nil, acked: 100),
    ]

    @Test func subflowsAreClaimedByTheirConnectionsPort() throws {
        var table = SubflowTable(node: "client", interfaces: ["10.0.1.2": "eth1", "10.0.2.2": "eth2"], paths: ["10.0.1.2": "client:eth1", "10.0.2.2": "client:eth2"])
        let lines = Self.client
        table.add(lines, at: 1)
        var later = lines
        later[0].bytesAcked += 1_250_000; later[1].bytesAcked += 2_500_000
        table.add(later, at: 2)
        let claims = [SubflowTable.Claim(workload: "bulk", client: "client", server: "server", ports: [5999])]
        let subflows = table.subflows(claims)
        #expect(subflows.count == 3, "every socket read is kept: \(subflows.map(\.local))")
        let joined = try #require(subflows.first { $0.local == "10.0.2.2:44373" })
        #expect(joined.workload == "bulk" && joined.side == "client" && joined.path == "client:eth2" && joined.interface == "eth2")
        #expect(abs((joined.throughput.values.first ?? 0) - 10) < 1e-9, "1.25 MB in 1 s: 10 Mbit/s")
        #expect(subflows.first { $0.remote.hasSuffix(":22") }?.workload == nil, "ssh is nobody's")
        var r = PublishingTests.run(throughput: [1], recoveries: [])
        r.subflows = subflows
        let shares = try #require(r.subflowShares("bulk"))
        #expect(abs((shares["client:eth1"] ?? 0) - 2.0 / 3) < 1e-9 && abs((shares["client:eth2"] ?? 0) - 1.0 / 3) < 1e-9, "\(shares)")
        #expect(RunReport.summary(r).contains("subflows (every TCP socket"))
        // A results file whose subflow arrays disagree is refused before any arithmetic.
        r.subflows![0].cwnd.removeLast()
        #expect(r.problemForReading()?.contains("different lengths") == true)
    }
}

/// Captures merged into one pcapng: classic pcap read (both byte orders, µs and ns), packets
/// in time order, interfaces named; tshark reads the result.
@Suite struct CaptureFileTests {
    static func pcap(bigEndian: Bool, nanos: Bool, packets: [(UInt32, UInt32, [UInt8])]) -> Data {
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { d.append(contentsOf: $0) } }
        u32(nanos ? 0xa1b23c4d : 0xa1b2c3d4); u16(2); u16(4); u32(0); u32(0); u32(128); u32(1)
        for (sec, frac, bytes) in packets { u32(sec); u32(frac); u32(UInt32(bytes.count)); u32(1500); d.append(contentsOf: bytes) }
        return d
    }

    @Test func pcapsAreReadAndMergedInTimeOrder() throws {
        let frame = [UInt8](repeating: 0xab, count: 60)
        let a = try #require(PcapFile(Self.pcap(bigEndian: false, nanos: false, packets: [(10, 500, frame), (12, 0, frame)])))
        let b = try #require(PcapFile(Self.pcap(bigEndian: true, nanos: true, packets: [(11, 7, frame), (13, 1, Array(frame.prefix(9)))])))
        #expect(a.packets.map(\.nanoseconds) == [10_000_500_000, 12_000_000_000] && b.packets.map(\.nanoseconds) == [11_000_000_007, 13_000_000_001])
        #expect(a.linkType == 1 && b.snaplen == 128 && b.packets[1].data.count == 9 && b.packets[1].originalLength == 1500)
        // A record cut short by the end of the file ends the reading; garbage is no pcap.
        var cut = Self.pcap(bigEndian: false, nanos: false, packets: [(10, 0, frame), (11, 0, frame)]); cut.removeLast(10)
        #expect(PcapFile(cut)?.packets.count == 1 && PcapFile(Data("not a pcap at all, really".utf8)) == nil && PcapFile(Data()) == nil)
        let merged = PcapFile.mergedPcapng([("client:eth1 (link wlan)", a), ("client:eth2 (link lte)", b)])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pathbed-merge-\(getpid()).pcapng").path
        try merged.write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["tshark", "-r", path, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.time_epoch", "-e", "frame.cap_len"]
        let pipe = Pipe(); p.standardOutput = pipe; p.standardError = FileHandle.nullDevice
        try p.run(); p.waitUntilExit()
        let rows = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(p.terminationStatus == 0 && rows.count == 4, "tshark (scripts/setup installs it) reads the merged file: \(rows)")
        #expect(rows.map { $0.first ?? "" } == ["client:eth1 (link wlan)", "client:eth2 (link lte)", "client:eth1 (link wlan)", "client:eth2 (link lte)"])
        #expect(rows.first.map { $0[1] == "10.000500000" } == true && rows.last?.last == "9", "\(rows)")
    }
}
