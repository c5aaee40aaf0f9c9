import Foundation

/// A classic pcap file (as dumpcap -P and tcpdump write it), read for merging: its link type,
/// snap length and packets. Bounded: a file that lies about its lengths is refused.
public struct PcapFile: Sendable {
    public struct Packet: Sendable {
        /// Nanoseconds since the epoch, on the capturing host's clock.
        public var nanoseconds: UInt64
        public var originalLength: UInt32
        public var data: Data
    }
    public var linkType: UInt32
    public var snaplen: UInt32
    public var packets: [Packet]

    public init?(_ d: Data) {
        let b = [UInt8](d)
        guard b.count >= 24 else { return nil }
        func u32(_ o: Int, _ little: Bool) -> UInt32 {
            let v = UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
            return little ? v : v.byteSwapped
        }
        let magic = u32(0, true)
        let little: Bool, nanos: Bool
        switch magic {
        case 0xa1b2c3d4: little = true; nanos = false
        case 0xd4c3b2a1: little = false; nanos = false
        case 0xa1b23c4d: little = true; nanos = true
        case 0x4d3cb2a1: little = false; nanos = true
        default: return nil
        }
        snaplen = u32(16, little)
        linkType = u32(20, little) & 0x0fff_ffff
        packets = []
        var o = 24
        while o + 16 <= b.count {
            let sec = UInt64(u32(o, little)), frac = UInt64(u32(o + 4, little))
            let caplen = Int(u32(o + 8, little)), orig = u32(o + 12, little)
            // A record cut by the end of the file (dumpcap stopped mid-write) ends the reading.
            guard caplen <= 262_144, o + 16 + caplen <= b.count else { break }
            packets.append(Packet(nanoseconds: sec * 1_000_000_000 + (nanos ? frac : frac * 1000), originalLength: orig,
                                  data: Data(b[(o + 16)..<(o + 16 + caplen)])))
            o += 16 + caplen
        }
    }

    /// One pcapng of several captures: a section header, one interface per capture (named, with
    /// its link type and snap length, nanosecond timestamps), then every packet in time order.
    public static func mergedPcapng(_ inputs: [(name: String, file: PcapFile)]) -> Data {
        var out = Data()
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func option(_ code: UInt16, _ value: [UInt8]) {
            u16(code); u16(UInt16(value.count)); out.append(contentsOf: value)
            out.append(contentsOf: [UInt8](repeating: 0, count: (4 - value.count % 4) % 4))
        }
        func block(_ type: UInt32, _ body: () -> Void) {
            let start = out.count
            u32(type); u32(0)
            body()
            let length = UInt32(out.count - start + 4)
            u32(length)
            out.replaceSubrange((start + 4)..<(start + 8), with: withUnsafeBytes(of: length.littleEndian) { Array($0) })
        }
        // Section header: byte-order magic, version 1.0, section length unknown.
        block(0x0A0D_0D0A) {
            u32(0x1A2B_3C4D); u16(1); u16(0); u32(0xFFFF_FFFF); u32(0xFFFF_FFFF)
            option(4, Array("Pathbed (merged from each host's dumpcap)".utf8)); option(0, [])
        }
        for (name, file) in inputs {
            block(0x0000_0001) {
                u16(UInt16(truncatingIfNeeded: file.linkType)); u16(0); u32(file.snaplen)
                option(2, Array(name.utf8.prefix(200)))  // if_name
                option(9, [9])  // if_tsresol: 10^-9 s
                option(0, [])
            }
        }
        var all: [(Int, Packet)] = []
        for (i, input) in inputs.enumerated() { all += input.file.packets.map { (i, $0) } }
        all.sort { $0.1.nanoseconds < $1.1.nanoseconds }
        for (i, p) in all {
            block(0x0000_0006) {
                u32(UInt32(i)); u32(UInt32(truncatingIfNeeded: p.nanoseconds >> 32)); u32(UInt32(truncatingIfNeeded: p.nanoseconds))
                u32(UInt32(p.data.count)); u32(p.originalLength)
                out.append(p.data)
                out.append(contentsOf: [UInt8](repeating: 0, count: (4 - p.data.count % 4) % 4))
            }
        }
        return out
    }
}

extension RunResults {
    /// One interface's capture (`run --capture`): all of them are in capture.pcapng.
    public struct Capture: Codable, Sendable, Equatable {
        public var link: String
        /// `NODE:INTERFACE` it was taken on, and that node's host.
        public var end: String
        public var host: String
        public var packets: Int
        public var bytes: Int
        /// The file reached its limit: dumpcap stopped capturing there.
        public var atLimit: Bool
        /// Packets the kernel dropped before dumpcap got them (its own count).
        public var droppedByKernel: Int?
        /// Bytes kept of each packet, and the capture filter (absent: every packet), as captured.
        public var snaplen: Int?
        public var filter: String?
        public init(link: String, end: String, host: String, packets: Int, bytes: Int, atLimit: Bool, droppedByKernel: Int?) {
            self.link = link; self.end = end; self.host = host; self.packets = packets; self.bytes = bytes; self.atLimit = atLimit; self.droppedByKernel = droppedByKernel
        }
    }

    /// What tshark's MPTCP dissector found in the capture.
    public struct CaptureSummary: Codable, Sendable, Equatable {
        /// The tool and its version (`TShark (Wireshark) 4.0.17`).
        public var tool: String
        /// TCP connections (each interface's view counts apart) that carried MPTCP options.
        public var mptcpStreams: Int
        /// Packets with each MPTCP option: MP_CAPABLE, MP_JOIN, DSS, ADD_ADDR, REMOVE_ADDR,
        /// MP_PRIO, MP_FAIL, MP_FASTCLOSE, MP_TCPRST.
        public var options: [String: Int]
        /// SYNs with MP_JOIN: subflows asked for (each interface that saw one counts it).
        public var joinSYNs: Int
        /// tshark's expert notes on MPTCP (DSS mapping problems among them), by message.
        public var expert: [String: Int]
        public init(tool: String, mptcpStreams: Int, options: [String: Int], joinSYNs: Int, expert: [String: Int]) {
            self.tool = tool; self.mptcpStreams = mptcpStreams; self.options = options; self.joinSYNs = joinSYNs; self.expert = expert
        }
    }
}
