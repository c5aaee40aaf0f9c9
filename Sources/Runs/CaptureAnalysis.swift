import Foundation
import Hosts
import Report

/// What tshark's MPTCP dissector finds in a run's capture.pcapng (MPTCP analysis and DSS
/// mapping checks on): subflows, each MPTCP option's packets, joins, and its expert notes.
public enum CaptureAnalysis {
    public static let optionNames = ["MP_CAPABLE", "MP_JOIN", "DSS", "ADD_ADDR", "REMOVE_ADDR", "MP_PRIO", "MP_FAIL", "MP_FASTCLOSE", "MP_TCPRST"]

    /// Nil where tshark is missing or fails (the capture is kept all the same).
    public static func summarize(_ path: String) -> (summary: RunResults.CaptureSummary?, problem: String?) {
        let e = LocalExecutor(host: "local")
        var version = BoundedText(limit: 4096)
        let interrupted = "the run was interrupted before tshark summed up capture.pcapng (the file is kept: `tshark -r` reads it)"
        if Interrupts.signal != 0 { return (nil, interrupted) }
        guard (try? e.run(["tshark", "--version"], in: nil, timeout: 30, output: { s, d in if s == .stdout { version.append(d) } })) == 0 else {
            if Interrupts.signal != 0 { return (nil, interrupted) }
            return (nil, "tshark is not installed: capture.pcapng is not summed up (scripts/setup installs it)")
        }
        var tally = Tally()
        var partial = Data()
        let code = try? e.run(["tshark", "-r", path, "-n", "-o", "mptcp.analyze_mptcp:TRUE", "-o", "mptcp.analyze_mappings:TRUE",
                               "-Y", "mptcp", "-T", "fields", "-E", "separator=/t", "-e", "frame.interface_name", "-e", "tcp.stream",
                               "-e", "tcp.options.mptcp.subtype", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e", "_ws.expert.message"], in: nil, timeout: 600) { s, d in
            guard s == .stdout else { return }
            partial.append(d)
            while let nl = partial.firstIndex(of: 0x0A) {
                tally.add(String(decoding: partial[partial.startIndex..<nl].prefix(4096), as: UTF8.self))
                partial.removeSubrange(partial.startIndex...nl)
            }
            if partial.count > 1 << 20 { partial.removeAll() }
        }
        guard code == 0 else {
            if Interrupts.signal != 0 { return (nil, interrupted) }
            return (nil, "tshark could not read \(path) (exit \(code.map(String.init) ?? "none"))")
        }
        let tool = version.text.split(separator: "\n").first.map { String($0.prefix(100)) } ?? "tshark"
        return (RunResults.CaptureSummary(tool: tool, mptcpStreams: tally.streams.count, options: tally.options, joinSYNs: tally.joinSYNs, expert: tally.expert), nil)
    }

    /// Counts of tshark's field lines: `INTERFACE\tSTREAM\tSUBTYPES\tSYN\tACK\tEXPERT,EXPERT`.
    struct Tally {
        var streams = Set<String>()
        var options: [String: Int] = [:]
        var joinSYNs = 0
        var expert: [String: Int] = [:]

        mutating func add(_ line: String) {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 5, !f[2].isEmpty else { return }
            if streams.count < 1_000_000 { streams.insert("\(f[0])/\(f[1])") }
            let subtypes = f[2].split(separator: ",").compactMap { Int($0) }
            for s in subtypes {
                let name = (0..<optionNames.count).contains(s) ? optionNames[s] : "subtype \(s)"
                options[name, default: 0] += 1
            }
            func set(_ v: String) -> Bool { v == "1" || v == "True" }
            if subtypes.contains(1), set(f[3]), !set(f[4]) { joinSYNs += 1 }
            // Only tshark's MPTCP notes (a DSS mapping missing, a fallback to an infinite mapping, ...).
            if f.count >= 6 {
                for m in f[5].split(separator: ",") where m.localizedCaseInsensitiveContains("mapping") || m.contains("MPTCP") {
                    if expert.count < 100 || expert[String(m)] != nil { expert[String(m.prefix(200)), default: 0] += 1 }
                }
            }
        }
    }
}
