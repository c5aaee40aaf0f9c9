import ArgumentParser
import Engine
import Foundation
import Hosts
import Planning
import TopologyModel

/// The kernel's MPTCP selftest `simult_flows.sh`, built by Pathbed and by hand side by side in
/// the MPTCP VM of the built-in pair: two paths between a client and a router (netem rate, and
/// delay where the case has one, on both ends of each), a plain link from the router to a
/// server, and a 16 MiB MPTCP transfer each way. Each time is printed against the selftest's
/// bound; a queue choice that meets every bound is one a lab can be compared with the
/// selftest under.
struct Selftest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Build the MPTCP selftest simult_flows.sh's cases with Pathbed (per queue choice) and by hand in the MPTCP VM, and print each transfer's time against the selftest's bound.",
        discussion: """
            Boots the VM pair unless it is up (and stops it again unless --keep-vms). For each case of simult_flows.sh \
            (rates and one-way delays of the two paths) and each run, builds the case by hand (the selftest's own tc \
            commands: netem rate, netem's default 1000-packet limit) and as a Pathbed lab once per queue choice \
            (`queue:` of the two profiles), alternating, and times a 16 MiB MPTCP upload and download between client \
            and server (Python sockets with IPPROTO_MPTCP; from connect to the last byte). The bound is the selftest's: \
            the transfer at 90 % of the two rates' sum, plus 400 ms for its tool's joins and 50 ms of slack.
            """
    )

    @Option(parsing: .upToNextOption, help: "Queue choices of the Pathbed labs, as `queue:` takes them (bdp, 100ms, 1000, netem).") var queues: [String] = ["bdp"]
    @Option(help: "Runs of every case.") var runs = 1
    @Option(help: "Which cases: latest (today's upstream: 10/10 and 15/5 Mbit/s), previous (10/3 Mbit/s, as 6.x stable kernels have them) or all.")
    var cases = "all"
    var chosen: [Case] { cases == "latest" ? Self.latest : cases == "previous" ? Self.previous : Self.latest + Self.previous }
    @Flag(help: "Leave out the case built by hand.") var noHand = false
    @Flag(name: .customLong("keep-vms"), help: "Leave the VM pair running afterwards.") var keepVMs = false
    @Option(help: "Also write every time as JSON to this file.") var json: String?

    /// simult_flows.sh's cases: rates (Mbit/s) and one-way delays (ms) of the two paths.
    struct Case: Codable {
        var rate1: Int, rate2: Int, delay1: Int, delay2: Int
        var name: String { "\(rate1)/\(rate2) Mbit/s, \(delay1)/\(delay2) ms" }
        /// The selftest's bound in ms (its integer arithmetic).
        var boundMilliseconds: Int { 1000 * Selftest.size * 8 * 10 / ((rate1 + rate2) * 1000 * 1000 * 9) + 400 + 50 }
    }
    /// Today's upstream cases (the unbalanced ones at 15/5 Mbit/s), and the 10/3 Mbit/s ones that
    /// releases before them ran (6.x stable kernels still do).
    static let latest = [Case(rate1: 10, rate2: 10, delay1: 0, delay2: 0), Case(rate1: 10, rate2: 10, delay1: 1, delay2: 25),
                         Case(rate1: 15, rate2: 5, delay1: 0, delay2: 0), Case(rate1: 15, rate2: 5, delay1: 1, delay2: 25),
                         Case(rate1: 15, rate2: 5, delay1: 25, delay2: 1)]
    static let previous = [Case(rate1: 10, rate2: 3, delay1: 0, delay2: 0), Case(rate1: 10, rate2: 3, delay1: 1, delay2: 25),
                           Case(rate1: 10, rate2: 3, delay1: 25, delay2: 1)]
    /// The selftest's large file: 2 * 2048 * 4096 bytes; its small one, 20 * 4096.
    static let size = 2 * 2048 * 4096
    static let small = 20 * 4096

    struct Time: Codable { var run: Int; var caseName: String; var variant: String; var direction: String; var milliseconds: Double; var bound: Int }

    /// One side of the transfer, as mptcp_connect -j does it: each side sends its part while it
    /// reads the other's, its first write 100 bytes and then a 200 ms pause for the join. Each
    /// prints when it had read everything (the monotonic clock, one for all namespaces) and the
    /// bytes it got, the client also when it connected: the transfer lasts from the connect until
    /// both sides have everything, as the selftest's two mptcp_connect processes do.
    static let transfer = #"""
import socket, sys, threading, time
MPTCP = 262
CHUNK = bytes(65536)
def send_all(s, n):
    # As mptcp_connect -j: a first write of 100 bytes, then 200 ms for the join to complete.
    first = min(n, 100)
    s.sendall(CHUNK[:first]); n -= first
    time.sleep(0.2)
    while n > 0:
        n -= s.send(CHUNK[:min(n, len(CHUNK))])
    s.shutdown(socket.SHUT_WR)
def recv_all(s):
    n = 0
    while True:
        d = s.recv(262144)
        if not d:
            return n
        n += len(d)
def duplex(s, send):
    # Both ways at once, as mptcp_connect's poll loop: send on a thread, read here.
    t = threading.Thread(target=send_all, args=(s, send)); t.start()
    got = recv_all(s); t.join()
    return got
if sys.argv[1] == "server":
    port, send = int(sys.argv[2]), int(sys.argv[3])
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM, MPTCP)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port)); l.listen(1); l.settimeout(60)
    c, _ = l.accept(); c.settimeout(120)
    got = duplex(c, send)
    print("%.6f %d" % (time.monotonic(), got))
    c.close()
else:
    addr, port, send = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    deadline = time.monotonic() + 15
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, MPTCP); s.settimeout(120)
        t0 = time.monotonic()
        try:
            s.connect((addr, port)); break
        except OSError:
            s.close()
            if time.monotonic() > deadline: raise
            time.sleep(0.05)
    got = duplex(s, send)
    print("%.6f %.6f %d" % (t0, time.monotonic(), got))
    s.close()
"""#

    /// The case as a Pathbed lab on the MPTCP VM, its two paths under `queue`.
    static func yaml(_ c: Case, queue: String) -> String {
        func profile(_ rate: Int, _ delay: Int) -> String { "{ rate: \(rate)mbit\(delay > 0 ? ", delay: \(delay)ms" : ""), queue: \(queue) }" }
        return """
            name: selftest
            hosts: { mptcp-vm: { ssh: vagrant@192.168.56.10, mptcp: true } }
            profiles:
              p1: \(profile(c.rate1, c.delay1))
              p2: \(profile(c.rate2, c.delay2))
            nodes:
              ns1:
                host: mptcp-vm
                mptcp: { endpoints: { eth2: subflow }, limits: { subflows: 1, add-addr-accepted: 1 } }
                routes: [ { to: default, via: 10.0.1.2 }, { to: default, via: 10.0.2.2, metric: 101 } ]
              ns2: { host: mptcp-vm, forwarding: true }
              ns3:
                host: mptcp-vm
                mptcp: { limits: { subflows: 1, add-addr-accepted: 1 } }
                routes: [ { to: default, via: 10.0.3.2 } ]  # ns3 is 10.0.3.1
            links:
              - { name: path1, endpoints: [ns1:eth1, ns2:eth1], subnet: 10.0.1.0/24, profile: p1 }
              - { name: path2, endpoints: [ns1:eth2, ns2:eth2], subnet: 10.0.2.0/24, profile: p2 }
              - { name: server, endpoints: [ns3:eth1, ns2:eth3], subnet: 10.0.3.0/24 }
            """
    }

    /// The case built by hand, as simult_flows.sh builds it (IPv4 only, `ip mptcp` for its
    /// pm_nl_ctl), timed both ways, and removed: one shell script in the VM.
    static func byHand(_ c: Case) -> String {
        func netem(_ rate: Int, _ delay: Int) -> String { "netem rate \(rate)mbit\(delay > 0 ? " delay \(delay)ms" : "")" }
        let n = "pbsf-\(getpid())"
        return """
            set -e
            n1=\(n)-1; n2=\(n)-2; n3=\(n)-3; py=
            cleanup() { ip netns del $n1 2>/dev/null; ip netns del $n2 2>/dev/null; ip netns del $n3 2>/dev/null; [ -z "$py" ] || rm -f "$py" "$py.server"; }
            trap cleanup EXIT
            ip netns add $n1; ip netns add $n2; ip netns add $n3
            for n in $n1 $n2 $n3; do ip -n $n link set lo up; done
            ip link add e11 netns $n1 type veth peer name e21 netns $n2
            ip link add e12 netns $n1 type veth peer name e22 netns $n2
            ip link add e23 netns $n2 type veth peer name e31 netns $n3
            ip -n $n1 addr add 10.0.1.1/24 dev e11; ip -n $n1 link set e11 up mtu 1500
            ip -n $n1 addr add 10.0.2.1/24 dev e12; ip -n $n1 link set e12 up mtu 1500
            ip -n $n1 route add default via 10.0.1.2; ip -n $n1 route add default via 10.0.2.2 metric 101
            ip -n $n1 mptcp limits set subflow 1 add_addr_accepted 1
            ip -n $n1 mptcp endpoint add 10.0.2.1 dev e12 subflow
            ip -n $n2 addr add 10.0.1.2/24 dev e21; ip -n $n2 link set e21 up mtu 1500
            ip -n $n2 addr add 10.0.2.2/24 dev e22; ip -n $n2 link set e22 up mtu 1500
            ip -n $n2 addr add 10.0.3.2/24 dev e23; ip -n $n2 link set e23 up mtu 1500
            ip netns exec $n2 sysctl -q net.ipv4.ip_forward=1
            ip -n $n3 addr add 10.0.3.3/24 dev e31; ip -n $n3 link set e31 up mtu 1500
            ip -n $n3 route add default via 10.0.3.2
            ip -n $n3 mptcp limits set subflow 1 add_addr_accepted 1
            tc -n $n1 qdisc add dev e11 root \(netem(c.rate1, c.delay1))
            tc -n $n1 qdisc add dev e12 root \(netem(c.rate2, c.delay2))
            tc -n $n2 qdisc add dev e21 root \(netem(c.rate1, c.delay1))
            tc -n $n2 qdisc add dev e22 root \(netem(c.rate2, c.delay2))
            \(transfers(client: "\(n)-1", server: "\(n)-3", address: "10.0.3.3"))
            """
    }

    /// Both transfers between two namespaces of the VM, one line each:
    /// `DIRECTION t0 clientEnd clientBytes serverEnd serverBytes`. The by-hand script and the
    /// Pathbed labs time them the same way; the caller's EXIT trap removes `$py`.
    static func transfers(client: String, server: String, address: String) -> String {
        """
        py=$(mktemp /tmp/pbsf-XXXXXX)
        cat > $py <<'PYEOF'
        \(transfer)
        PYEOF
        for dir in upload download; do
          if [ $dir = upload ]; then up=\(size); down=\(small); else up=\(small); down=\(size); fi
          ip netns exec \(sh(server)) python3 $py server 10100 $down > $py.server & s=$!
          c=$(ip netns exec \(sh(client)) python3 $py client \(address) 10100 $up)
          wait $s
          echo "$dir $c $(cat $py.server)"
        done
        """
    }

    /// The transfer's time from the client's `t0 end bytes` and the server's `end bytes`: from
    /// the connect until both had all the other sent (nil when either got less).
    static func milliseconds(client: [String], server: [String], up: Int, down: Int) -> Double? {
        guard client.count == 3, server.count == 2, let t0 = Double(client[0]), let clientEnd = Double(client[1]), let serverEnd = Double(server[0]),
              Int(client[2]) == down, Int(server[1]) == up, t0.isFinite, clientEnd.isFinite, serverEnd.isFinite else { return nil }
        let ms = (max(clientEnd, serverEnd) - t0) * 1000
        return (0...600_000).contains(ms) ? ms : nil
    }

    /// Progress as it happens, also into a file.
    func say(_ text: String) { print(text); fflush(nil) }

    func run() throws {
        guard geteuid() == 0 else { throw ValidationError("this benchmark boots VMs and builds labs: run it as root") }
        guard (1...20).contains(runs) else { throw ValidationError("--runs takes 1 to 20") }
        guard ["latest", "previous", "all"].contains(cases) else { throw ValidationError("--cases takes latest, previous or all") }
        Interrupts.catchSignals()
        // Every queue choice is checked as a profile would have it, before anything starts.
        for q in queues { _ = try TopologyLoader.load(data: Data(Self.yaml(Self.latest[0], queue: q).utf8), file: "selftest (queue: \(q))") }
        let pair = LocalVMs()
        let wasUp = pair.load() != nil
        _ = try pair.up { say("  \($0)") }
        defer { if !keepVMs && !wasUp { _ = pair.down(); say("  the VM pair is stopped") } }
        let inventory = try Inventory.read(pair.inventoryPath)

        var times: [Time] = []
        func check() throws { if Interrupts.signal != 0 { throw ExitCode(130) } }
        /// Runs a script that prints `transfers` lines in the VM, and its two times.
        func timed(_ script: String, on e: HostExecutor, variant: String, run: Int, _ c: Case) throws -> [Time] {
            var out = Data()
            let code = try e.run(["sh", "-c", script], in: nil, timeout: 300) { s, d in if s == .stdout { out.append(d) } }
            try check()  // an interrupted transfer is no failure of the lab
            let text = String(decoding: out, as: UTF8.self)
            let lines = text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            let found = lines.compactMap { f -> Time? in
                guard f.count == 6, let ms = Self.milliseconds(client: Array(f[1...3]), server: Array(f[4...5]), up: f[0] == "upload" ? Self.size : Self.small,
                                                            down: f[0] == "upload" ? Self.small : Self.size) else { return nil }
                return Time(run: run, caseName: c.name, variant: variant, direction: f[0], milliseconds: ms, bound: c.boundMilliseconds)
            }
            guard code == 0, found.count == 2 else { throw ValidationError("\(variant), \(c.name): the transfers failed (exit \(code)): \(text.suffix(500)); `pathbed vm status` says whether the pair is healthy, `pathbed vm down` and a new run start it afresh") }
            for t in found { say(String(format: "  %-18@ %-8@ %7.0f ms%@", variant, t.direction, t.milliseconds, t.milliseconds > Double(t.bound) ? "  OVER" : "")) }
            return found
        }
        for run in 1...runs {
            for c in chosen {
                say("run \(run), \(c.name) (bound \(c.boundMilliseconds) ms)")
                if !noHand {
                    let lab = LabController.forLab(try TopologyLoader.load(data: Data(Self.yaml(c, queue: "bdp").utf8), file: "selftest"), inventory: inventory)
                    defer { for e in lab.executors.values { e.close() } }
                    times += try timed(Self.byHand(c), on: lab.executor("mptcp-vm"), variant: "by hand", run: run, c)
                }
                for q in queues {
                    try check()
                    let topology = try TopologyLoader.load(data: Data(Self.yaml(c, queue: q).utf8), file: "selftest")
                    let lab = LabController.forLab(topology, inventory: inventory)
                    defer { for e in lab.executors.values { e.close() } }
                    _ = try? lab.down(topology.name)
                    _ = try lab.up(topology)
                    defer { _ = try? lab.down(topology.name) }
                    let script = "trap '[ -z \"$py\" ] || rm -f \"$py\" \"$py.server\"' EXIT; set -e\n"
                        + Self.transfers(client: topology.namespace(of: "ns1"), server: topology.namespace(of: "ns3"), address: "10.0.3.1")
                    times += try timed(script, on: lab.executor("mptcp-vm"), variant: "queue: \(q)", run: run, c)
                }
                try check()
            }
        }
        say("\n| case (rates, one-way delays) | bound | " + (noHand ? [] : ["by hand"]).joined() + (noHand ? "" : " | ") + queues.map { "queue: \($0)" }.joined(separator: " | ") + " |")
        say("|---|---|" + String(repeating: "---|", count: queues.count + (noHand ? 0 : 1)))
        for c in chosen {
            for direction in ["upload", "download"] {
                let cells = ((noHand ? [] : ["by hand"]) + queues.map { "queue: \($0)" }).map { v -> String in
                    let ms = times.filter { $0.caseName == c.name && $0.variant == v && $0.direction == direction }.map { String(format: "%.0f%@", $0.milliseconds, $0.milliseconds > Double($0.bound) ? "!" : "") }
                    return ms.joined(separator: ", ")
                }
                say("| \(c.name), \(direction) | \(c.boundMilliseconds) ms | " + cells.joined(separator: " | ") + " |")
            }
        }
        let over = times.filter { $0.variant != "by hand" && $0.milliseconds > Double($0.bound) }
        say("\n(ms; ! is over the bound.) \(over.isEmpty ? "Every Pathbed transfer met its bound." : "\(over.count) Pathbed transfers were over their bound.")")
        if let json {
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(times).write(to: URL(fileURLWithPath: json), options: .atomic)
        }
    }
}
