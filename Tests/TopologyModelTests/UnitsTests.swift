import Testing
@testable import TopologyModel

@Suite struct UnitsTests {
    @Test(arguments: [("20mbit", 20_000_000), ("1.5gbit", 1_500_000_000), ("800kbit", 800_000), ("20 Mbit/s", 20_000_000), ("9600bit", 9600)] as [(String, UInt64)])
    func bitrates(text: String, bps: UInt64) throws {
        #expect(try Bitrate.parse(text).get().bitsPerSecond == bps)
    }

    @Test(arguments: ["20", "0mbit", "-1mbit", "20mbps", "fast", "20furlong"])
    func badBitrates(text: String) {
        #expect(throws: UnitError.self) { try Bitrate.parse(text).get() }
    }

    @Test(arguments: [("20ms", 20_000_000), ("250us", 250_000), ("1.5s", 1_500_000_000), ("2min", 120_000_000_000), ("0s", 0)] as [(String, Int64)])
    func durations(text: String, ns: Int64) throws {
        #expect(try Duration.parse(text).get().nanoseconds == ns)
    }

    @Test func bareNumberIsNeverMicroseconds() {
        guard case let .failure(e) = Duration.parse("20") else { Issue.record("a bare 20 was accepted"); return }
        #expect(e.message.contains("no unit"))
        #expect(e.hint.contains("20ms"))
    }

    @Test(arguments: ["-5ms", "5 parsecs", "ms"])
    func badDurations(text: String) {
        #expect(throws: UnitError.self) { try Duration.parse(text).get() }
    }

    @Test func percents() throws {
        #expect(try Percent.parse("1%").get().value == 1)
        #expect(try Percent.parse("0.5 %").get().value == 0.5)
        #expect(throws: UnitError.self) { try Percent.parse("120%").get() }
        #expect(throws: UnitError.self) { try Percent.parse("1").get() }
        #expect(throws: UnitError.self) { try Percent.parse("-1%").get() }
    }

    @Test func descriptionsRoundTrip() throws {
        for text in ["20mbit", "1.5gbit", "10ms", "250us", "1%"] {
            if let b = try? Bitrate.parse(text).get() { #expect(b.description == text) }
            if let d = try? Duration.parse(text).get() { #expect(d.description == text) }
            if let p = try? Percent.parse(text).get() { #expect(p.description == text) }
        }
    }
}

@Suite struct IPAddressTests {
    @Test func parsesAndPrints() throws {
        #expect(IPAddress("10.0.1.2")?.description == "10.0.1.2")
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8::1")
        #expect(IPAddress("10.1") == nil)
        #expect(IPAddress("300.1.1.1") == nil)
        #expect(IPNetwork("10.0.1.0/33") == nil)
        #expect(IPNetwork("10.0.1.0") == nil)
    }

    @Test func containmentAndOverlap() throws {
        let a = try #require(IPNetwork("10.0.0.0/16")), b = try #require(IPNetwork("10.0.1.0/24")), c = try #require(IPNetwork("10.1.0.0/24"))
        #expect(a.overlaps(b) && b.overlaps(a))
        #expect(!a.overlaps(c))
        #expect(b.contains(try #require(IPAddress("10.0.1.255"))))
        #expect(!b.contains(try #require(IPAddress("10.0.2.0"))))
        #expect(try #require(IPNetwork("10.0.1.7/24")).network.description == "10.0.1.0/24")
    }

    @Test func usableHosts() throws {
        #expect(try #require(IPNetwork("10.0.0.0/24")).usableHosts.count == 254)
        #expect(try #require(IPNetwork("10.0.0.0/31")).usableHosts.count == 2)
        #expect(try #require(IPNetwork("10.0.0.0/30")).usableHosts.first.description == "10.0.0.1")
        #expect(try #require(IPNetwork("2001:db8::/126")).usableHosts.count == 3)
    }
}
