import Foundation
@testable import Runs
import Testing

/// What the tools print, read by the one parser each: iperf3's intervals and JSON report, ping's
/// replies, `ip mptcp monitor`'s events and the kernel's MPTcpExt counters.
@Suite struct OutputParserTests {
    @Test func iperf3IntervalsAndOnlyIntervals() {
        #expect(Iperf3Output.intervalMbps("[  5]   0.10-0.20   sec   245 KBytes  20.0 Mbits/sec", summed: false) == 20)
        #expect(Iperf3Output.intervalMbps("[  5]   0.10-0.20   sec   245 KBytes  1.5 Gbits/sec    0   120 KBytes", summed: false) == 1500)
        #expect(Iperf3Output.intervalMbps("[  5]   0.10-0.20   sec   2 KBytes  800 Kbits/sec", summed: false) == 0.8)
        #expect(Iperf3Output.intervalMbps("[SUM]   0.10-0.20   sec   490 KBytes  40.1 Mbits/sec", summed: true) == 40.1)
        #expect(Iperf3Output.intervalMbps("[SUM]   0.10-0.20   sec   490 KBytes  40.1 Mbits/sec", summed: false) == nil, "a sum is not a stream")
        #expect(Iperf3Output.intervalMbps("[  5]   0.00-10.00  sec  23.8 MBytes  20.0 Mbits/sec  receiver", summed: false) == nil, "the summary is no interval")
        #expect(Iperf3Output.intervalMbps("[  5]   0.10-0.20   sec   245 KBytes  nan Mbits/sec", summed: false) == nil)
        #expect(Iperf3Output.intervalMbps("Connecting to host 10.0.3.2, port 5201", summed: false) == nil)
        #expect(Iperf3Output.error(in: "x\niperf3: error - the server is busy running a test. try again later\n")?.contains("busy") == true)
    }

    @Test func iperf3sJSONReportGivesTheReceiversRate() throws {
        #expect(try Iperf3Output.receivedMbps(json: Data(#"{"end": {"sum_received": {"bits_per_second": 19500000.0}}}"#.utf8)) == 19.5)
        #expect(throws: Iperf3Output.Iperf3Error.self) { try Iperf3Output.receivedMbps(json: Data(#"{"error": "unable to connect"}"#.utf8)) }
        #expect(throws: Iperf3Output.Iperf3Error.self) { try Iperf3Output.receivedMbps(json: Data("not json".utf8)) }
        #expect(throws: Iperf3Output.Iperf3Error.self) { try Iperf3Output.receivedMbps(json: Data(#"{"end": {}}"#.utf8)) }
    }

    @Test func pingReplies() {
        #expect(PingOutput.reply("64 bytes from 10.0.3.2: icmp_seq=7 ttl=63 time=21.4 ms")! == (7, 21.4))
        #expect(PingOutput.reply("From 10.0.1.1 icmp_seq=3 Destination Host Unreachable") == nil)
        #expect(PingOutput.reply("64 bytes from 10.0.3.2: icmp_seq=7 ttl=63 time=nan ms") == nil)
        #expect(PingOutput.reply("rtt min/avg/max/mdev = 21.0/28.0/40.1/4.2 ms") == nil)
        // ping -D: the host's realtime stamp before the line.
        let stamped: Substring = "[1764669600.123456] 64 bytes from 10.0.3.2: icmp_seq=7 ttl=63 time=21.4 ms"
        #expect(PingOutput.reply(stamped)! == (7, 21.4) && PingOutput.stamp(stamped) == 1764669600.123456)
        for bad: Substring in ["64 bytes from 10.0.3.2: icmp_seq=7", "[nan] 64 bytes", "[-3] x", "[1e300] x", "[12", "[] x"] {
            #expect(PingOutput.stamp(bad) == nil, "\(bad)")
        }
    }

    /// Replies handed over late (a busy emulated VM) keep the times ping stamped them with: the
    /// least delayed line anchors the host's clock to the run's.
    @Test func pingRepliesArePlacedByTheirOwnStamps() throws {
        // Echoes every 100 ms from 10.0 s on the run's clock (host stamps from 5000.0), 20 ms RTT;
        // the third and fourth lines reached the controller 0.6 s late.
        let delays = [0.004, 0.005, 0.6, 0.5, 0.003]
        let replies = delays.indices.map { i in
            (arrived: 10.0 + Double(i) * 0.1 + 0.02 + delays[i], stamp: Optional(5000.0 + Double(i) * 0.1 + 0.02), ms: 20.0)
        }
        let times = try #require(PingWorkload.anchored(replies))
        for (i, t) in times.enumerated() { #expect(abs(t - (10.0 + Double(i) * 0.1 + 0.003)) < 1e-6, "echo \(i) at \(t)") }
        // Without a stamp on every line, stamps going backwards, or a host clock set meanwhile: none.
        var unstamped = replies; unstamped[1].stamp = nil
        var backwards = replies; backwards[3].stamp = 4000
        var jumped = replies; for i in 3..<5 { jumped[i].stamp! += 60 }
        // A hand-over stalled 20 s (its lines came in a burst after it): the stamps still place them.
        var stalled = replies; for i in 1..<4 { stalled[i].arrived = 10.0 + 0.4 + 20 }
        let placed = try #require(PingWorkload.anchored(stalled))
        for (i, t) in placed.enumerated() { #expect(abs(t - (10.0 + Double(i) * 0.1 + 0.003)) < 1e-6, "echo \(i) at \(t) after a stall") }
        #expect(PingWorkload.anchored(unstamped) == nil && PingWorkload.anchored(backwards) == nil && PingWorkload.anchored(jumped) == nil)
        #expect(PingWorkload.anchored([]) == nil)
    }

    @Test func mptcpMonitorEventsAndCounters() throws {
        let e = try #require(MPTCPWatch.parseEvent("[       SF_CLOSED] token=1a2b remid=1 locid=2 saddr4=10.0.2.2 daddr4=10.0.3.2 sport=5 dport=6", node: "client", t: 3.5))
        #expect(e.type == "SF_CLOSED" && e.node == "client" && e.t == 3.5)
        #expect(e.detail == "remid=1 locid=2 saddr4=10.0.2.2 daddr4=10.0.3.2")
        #expect(MPTCPWatch.parseEvent("not an event", node: "c", t: 0) == nil)
        // iproute2 older than the kernel prints newer events by number.
        #expect(MPTCPWatch.parseEvent("[       UNKNOWN 15] token=0 sport=5201", node: "s", t: 0)?.type == "LISTENER_CREATED")
        #expect(MPTCPWatch.parseEvent("[       UNKNOWN 99] token=0", node: "s", t: 0)?.type == "UNKNOWN 99")
        let netstat = "TcpExt: A B\nTcpExt: 1 2\nMPTcpExt: MPCapableSYNTX Huge MPJoinSynRx\nMPTcpExt: 4 99999999999999999999 7\n"
        let c = MPTCPWatch.parseMPTcpExt(netstat)
        #expect(c["MPCapableSYNTX"] == 4 && c["MPJoinSynRx"] == 7 && c["Huge"] == nil, "a value past Int is left out, the rest stay paired: \(c)")
        #expect(MPTCPWatch.growth(before: ["n": ["A": 5, "B": 1]], after: ["n": ["A": 9, "B": 1]]) == ["n": ["A": 4]])
    }
}
