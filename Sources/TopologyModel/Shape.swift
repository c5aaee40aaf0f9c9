/// The shape of a topology file: which keys each object takes, of which type, with what meaning.
///
/// This table is the single source of truth for three things: the decoder (which refuses keys not
/// listed here, with a "did you mean"), the JSON Schema (`TopologySchema`) and the reference docs.
/// The decoder asks for fields by key through `ObjectReader`, which traps on a key that is not in
/// the shape, and a test checks that every field of every shape is read by the decoder, so the
/// schema and the model cannot drift apart.
public indirect enum ValueType: Sendable {
    /// A name of something in the file: letters, digits, `-` and `_`.
    case name
    /// Free text, optionally constrained by a regular expression.
    case string(pattern: String?)
    case bool
    case integer(min: Int, max: Int)
    case bitrate
    case duration
    case percent
    case ipAddress
    /// An address with a prefix length, e.g. `10.0.1.0/24`.
    case ipNetwork
    case enumeration([String])
    case object(ObjectShape)
    /// A mapping from free names to values of one type (e.g. `nodes:`).
    case map(ValueType)
    case list(ValueType, minItems: Int, maxItems: Int?)
    /// Any one of these forms (e.g. a profile name, or `{forward, reverse}`).
    case oneOf([ValueType])
    /// Anything: passed on to a plugin as it is.
    case any
}

public struct Field: Sendable {
    public var key: String
    public var type: ValueType
    public var description: String
    public var required: Bool
    public init(_ key: String, _ type: ValueType, required: Bool = false, _ description: String) {
        self.key = key; self.type = type; self.required = required; self.description = description
    }
}

public final class ObjectShape: Sendable {
    public let name: String
    public let description: String
    public let fields: [Field]
    init(_ name: String, _ description: String, _ fields: [Field]) {
        self.name = name; self.description = description; self.fields = fields
    }
    func field(_ key: String) -> Field? { fields.first { $0.key == key } }
}

/// Patterns shared by the decoder and the schema.
enum Patterns {
    static let name = "^[A-Za-z0-9][A-Za-z0-9_-]*$"
    static let bitrate = "^[0-9]+(\\.[0-9]+)?\\s*[kKmMgGtT]?[bB][iI][tT](/s)?$"
    static let duration = "^[0-9]+(\\.[0-9]+)?\\s*(ns|us|µs|ms|s|min|h)$"
    static let percent = "^[0-9]+(\\.[0-9]+)?\\s*%$"
}

/// The topology format, object by object.
public enum Shapes {
    public static let host = ObjectShape("host", "A machine the lab spans: this one, or one reached over ssh.", [
        Field("local", .bool, "This machine (the default when 'ssh' is not given)."),
        Field("ssh", .string(pattern: "^([A-Za-z0-9._][A-Za-z0-9._-]*@)?[A-Za-z0-9.:_][A-Za-z0-9.:_-]*$"),
              "How to reach the host: [user@]address. The agent runs there as `pathbed agent`."),
        Field("underlay", .ipAddress, "The host's address that tunnels (gretap, VXLAN) between hosts use as their outer source/destination; for a VM (`vm:`), its address on the segment that joins the VMs."),
        Field("interface", .string(pattern: "^[^\\s/:%]{1,15}$"), "The underlay interface whose MTU is raised (default: the one routing to the peer)."),
        Field("mtu", .integer(min: 576, max: 65535), "The underlay MTU to raise to, so that full-size frames fit into a tunnel (the origin study used 5000)."),
        Field("mptcp", .bool, "Whether this host's kernel is expected to run MPTCP (default true). Nodes on a host without MPTCP may not set MPTCP options."),
        Field("tunnel", .enumeration(["gretap", "vxlan"]), "How this host's links to other hosts are carried unless a link says: vxlan for a kernel or network without GRE (either host of a pair asking for vxlan makes their links vxlan). Default: the lab's `tunnel:`."),
        Field("vm", .object(vm), "Boot this host as a local VM (`pathbed vm up FILE`): its kernel, memory and CPUs."),
    ])

    public static let vm = ObjectShape("vm", "A host as a local VM under virtme-ng: `pathbed vm up FILE` boots one per host that has `vm:`.", [
        Field("kernel", .string(pattern: nil),
              "`distribution` (default: the newest kernel in /boot), a kernel image file (bzImage, vmlinuz), or a kernel build tree; paths relative to this file."),
        Field("memory", .integer(min: 256, max: 1_048_576), "Memory in MiB (default 1024)."),
        Field("cpus", .integer(min: 1, max: 64), "Virtual CPUs (default 1)."),
    ])

    public static let gilbertElliott = ObjectShape("gilbert-elliott", "Bursty loss: a two-state Markov chain (netem `loss gemodel`).", [
        Field("p", .percent, required: true, "Probability of moving from the good to the bad state."),
        Field("r", .percent, "Probability of moving from the bad to the good state (default 100% - p)."),
        Field("bad-loss", .percent, "Loss probability in the bad state (netem's 1-h; default 100%)."),
        Field("good-loss", .percent, "Loss probability in the good state (netem's 1-k; default 0%)."),
    ])

    public static let loss = ObjectShape("loss", "Packet loss: random (with optional correlation) or the Gilbert-Elliott model.", [
        Field("percent", .percent, "Random loss probability."),
        Field("correlation", .percent, "Correlation with the previous packet's loss decision."),
        Field("gilbert-elliott", .object(gilbertElliott), "Bursty loss instead of random loss."),
    ])

    public static let reorder = ObjectShape("reorder", "Reordering: some packets are sent at once, the rest delayed (needs a delay).", [
        Field("percent", .percent, required: true, "Share of packets sent immediately, out of order."),
        Field("correlation", .percent, "Correlation with the previous decision."),
        Field("gap", .integer(min: 1, max: 1_000_000), "Reorder every Nth packet instead of at random."),
    ])

    public static let profile = ObjectShape("profile", """
        Named link characteristics. Each direction the profile shapes gets its own queue at the sending \
        interface, so `delay` is one-way: a link shaped in both directions has an RTT of twice the delay.
        """, [
        Field("rate", .bitrate, "Bandwidth limit, e.g. 20mbit (tbf, or htb when combined with netem)."),
        Field("delay", .duration, "One-way delay added in each shaped direction (netem)."),
        Field("jitter", .duration, "Delay variation around `delay` (netem)."),
        Field("delay-correlation", .percent, "Correlation of successive delay values (netem)."),
        Field("distribution", .enumeration(["uniform", "normal", "pareto", "paretonormal"]), "Delay distribution when `jitter` is set (netem)."),
        Field("loss", .oneOf([.percent, .object(loss)]), "Packet loss: a percentage, or {percent, correlation} or {gilbert-elliott: {...}}."),
        Field("duplicate", .percent, "Share of packets sent twice (netem)."),
        Field("corrupt", .percent, "Share of packets with a flipped bit (netem)."),
        Field("reorder", .oneOf([.percent, .object(reorder)]), "Reordering (netem; needs a delay)."),
        Field("queue", .oneOf([.enumeration(["bdp", "netem"]), .integer(min: 1, max: 1_000_000), .duration]),
              "Queue of each shaped direction: `bdp` (the default: what the delay holds plus the rate times twice the delay, never less than 44 packets), a time at the rate (`100ms`, plus what the delay holds), packets (`1000`), or `netem` (its own default, 1000 packets)."),
        Field("queue-limit", .integer(min: 1, max: 1_000_000), "Queue length in packets: the same as `queue: N` (give one of the two)."),
        Field("direction", .enumeration(["both", "forward", "reverse"]),
              "Which direction is shaped: forward = traffic leaving the link's first endpoint, reverse = leaving the second (default both)."),
    ])

    public static let route = ObjectShape("route", "A route in a node's namespace.", [
        Field("to", .oneOf([.enumeration(["default"]), .ipNetwork]), required: true, "Destination prefix, or `default`."),
        Field("via", .ipAddress, "Next-hop gateway."),
        Field("dev", .string(pattern: "^[^\\s/:%]{1,15}$"), "Outgoing interface (one of the node's interfaces)."),
        Field("source", .ipAddress, "Preferred source address (must be one of the node's addresses)."),
        Field("metric", .integer(min: 0, max: 4_294_967_295), "Route priority; lower wins."),
        Field("table", .integer(min: 1, max: 4_294_967_295), "Routing table (default: main)."),
    ])

    public static let mptcpLimits = ObjectShape("mptcp-limits", "MPTCP path-manager limits (`ip mptcp limits`); the kernel allows at most 8.", [
        Field("subflows", .integer(min: 0, max: 8), "Extra subflows per connection."),
        Field("add-addr-accepted", .integer(min: 0, max: 8), "ADD_ADDR announcements accepted per connection."),
    ])

    static let endpointFlags = ["subflow", "signal", "backup", "fullmesh"]

    public static let mptcpEndpoint = ObjectShape("mptcp-endpoint", "An MPTCP endpoint given in full.", [
        Field("flags", .list(.enumeration(endpointFlags), minItems: 1, maxItems: 4), required: true, "subflow, signal, backup, fullmesh."),
        Field("address", .ipAddress, "The address to use (default: the interface's first address)."),
        Field("id", .integer(min: 1, max: 255), "Endpoint id (default: assigned in order)."),
    ])

    public static let mptcp = ObjectShape("mptcp", "MPTCP in this node's namespace (upstream Linux MPTCP, in-kernel path manager).", [
        Field("enabled", .bool, "net.mptcp.enabled (default true when this block is present)."),
        Field("endpoints", .map(.oneOf([.enumeration(endpointFlags), .list(.enumeration(endpointFlags), minItems: 1, maxItems: 4), .object(mptcpEndpoint)])),
              "Per interface: its endpoint flags, e.g. `wlan0: subflow` or `lte0: [subflow, backup]`."),
        Field("limits", .object(mptcpLimits), "Path-manager limits."),
        Field("scheduler", .string(pattern: "^[a-z0-9_]+$"), "net.mptcp.scheduler (upstream offers `default`)."),
        Field("path-manager", .enumeration(["kernel", "userspace"]), "net.mptcp.pm_type (default kernel)."),
    ])

    public static let node = ObjectShape("node", "A network namespace.", [
        Field("host", .name, "The host this node runs on (default: the only host)."),
        Field("forwarding", .bool, "IP forwarding (IPv4 and IPv6); set it on routers."),
        Field("routes", .list(.object(route), minItems: 0, maxItems: nil), "Routes, e.g. `- {to: default, via: 10.0.1.1}`."),
        Field("mptcp", .oneOf([.bool, .object(mptcp)]), "MPTCP settings, or true/false."),
        Field("congestion-control", .string(pattern: "^[a-z0-9_]+$"), "net.ipv4.tcp_congestion_control, e.g. cubic, bbr, reno."),
        Field("source-routing", .bool, """
            One routing table per interface with a rule by source address, so that each subflow leaves \
            through its own interface (default: on for MPTCP nodes with more than one addressed interface).
            """),
        Field("sysctls", .map(.oneOf([.string(pattern: nil), .integer(min: Int.min, max: Int.max), .bool])),
              "Other namespace sysctls, e.g. `net.ipv4.tcp_ecn: 1`."),
    ])

    public static let bridge = ObjectShape("bridge", "A Linux bridge (no Open vSwitch): one layer-2 segment. At most 1023 link ends (the kernel takes 1024 ports on a bridge and keeps one).", [
        Field("host", .name, "The host this bridge lives on (default: the only host)."),
        Field("subnet", .ipNetwork, "Subnet that addresses of interfaces on this segment are drawn from."),
        Field("stp", .bool, "Spanning tree (default off)."),
    ])

    public static let endpoint = ObjectShape("endpoint", "One end of a link given in full.", [
        Field("node", .name, "The node (namespace) of this end."),
        Field("interface", .string(pattern: "^[^\\s/:%]{1,15}$"), "The interface name inside the node."),
        Field("bridge", .name, "A bridge instead of a node interface."),
        Field("address", .ipNetwork, "An explicit address with prefix, e.g. 10.0.1.10/24."),
    ])

    public static let directionalProfile = ObjectShape("directional-profile", "Different profiles per direction.", [
        Field("forward", .name, "Profile for traffic leaving the first endpoint."),
        Field("reverse", .name, "Profile for traffic leaving the second endpoint."),
    ])

    public static let link = ObjectShape("link", "A point-to-point link: a veth pair, or a gretap tunnel when its ends are on different hosts.", [
        Field("name", .name, "A name for the link, for faults and reports (default: its first endpoint)."),
        Field("endpoints", .list(.oneOf([.string(pattern: "^[A-Za-z0-9][A-Za-z0-9_-]*(:[^\\s/:]{1,15})?$"), .object(endpoint)]), minItems: 2, maxItems: 2),
              required: true, "Two ends: `node:interface` or a bridge name."),
        Field("profile", .oneOf([.name, .object(directionalProfile)]), "A profile name, or {forward: NAME, reverse: NAME}."),
        Field("subnet", .ipNetwork, "Subnet for the two ends' addresses (point-to-point links; bridges carry their own)."),
        Field("mtu", .integer(min: 576, max: 65535), "MTU of both ends (default 1500)."),
        Field("tunnel", .enumeration(["gretap", "vxlan"]), "When the ends are on different hosts: gretap (GRE with a key) or vxlan (UDP 4789 with a VNI). Default: the lab's `tunnel:`."),
        Field("merge", .bool, "Between two bridges on one host, with no profile and no fault: false keeps it a veth pair between two kernel bridges (default true: the two bridges are made as one)."),
        Field("capture", .bool, "true: every run captures this link's packets (headers only) on its first node end, into the run's capture.pcapng (as `run --capture LINK`). Default false."),
    ])

    public static let workload = ObjectShape("workload", "Traffic to run: a built-in plugin (iperf3, ping, transfer, command) or an external program (docs/plugins.md).", [
        Field("name", .name, required: true, "A name for reports."),
        Field("plugin", .string(pattern: "^[A-Za-z0-9_./-]+$"), required: true, "iperf3, ping, transfer, command, or the path of an external plugin (relative to this file)."),
        Field("client", .name, "The node that starts the traffic."),
        Field("server", .name, "The node that serves it."),
        Field("target", .ipAddress, "Address the client connects to (default: the server's first address)."),
        Field("node", .name, "For single-node workloads: where it runs."),
        Field("mptcp", .bool, "Open MPTCP sockets (via mptcpize when the tool lacks native support)."),
        Field("at", .duration, "Start time from the run's start (default 0s)."),
        Field("duration", .duration, "How long it runs."),
        Field("with", .any, "Plugin-specific options, passed on as they are."),
    ])

    public static let fault = ObjectShape("fault", "A fault injected during the run. Every fault is reverted after `for`.", [
        Field("at", .duration, required: true, "When it starts, from the run's start."),
        Field("fault", .enumeration(FaultEvent.Name.allCases.map(\.rawValue)), required: true, "What happens."),
        Field("link", .string(pattern: nil), "The link: its name or one of its ends as `node:interface`."),
        Field("nodes", .list(.name, minItems: 1, maxItems: nil), "For `partition`: the nodes cut off from the rest."),
        Field("for", .duration, "How long the fault lasts before it is reverted."),
        Field("every", .duration, "Repeat with this period (with `count`)."),
        Field("count", .integer(min: 1, max: 100_000), "How many times to repeat (default 1)."),
        Field("random", .enumeration(["exponential", "uniform"]), "Random gaps between repetitions, averaging `every` and never overlapping; reproducible with `run: {seed: N}`."),
        Field("profile", .name, "For `profile`: the profile to switch to."),
        Field("loss", .percent, "For `loss-burst`: the loss during the burst."),
        Field("plugin", .string(pattern: "^[A-Za-z0-9_./-]+$"), "For `plugin`: the external fault plugin."),
        Field("with", .any, "Plugin-specific options."),
    ])

    public static let run = ObjectShape("run", "Settings of a run.", [
        Field("duration", .duration, "Length of the run (default: until the last workload ends)."),
        Field("seed", .integer(min: 0, max: Int.max), "Seed for random schedules."),
        Field("capture-snaplen", .integer(min: 64, max: 65535), "Bytes kept of each captured packet (links with `capture: true`, or `run --capture`). Default 128: the headers with their options."),
        Field("capture-limit", .integer(min: 1, max: 2000), "The most megabytes captured per link; capturing stops there and the summary says so. Default 20."),
        Field("capture-filter", .string(pattern: "^[ -~]{1,1000}$"), "A capture filter (pcap-filter syntax, as `tcpdump` takes it): only the packets it keeps are captured, in the kernel. E.g. `tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0` keeps the handshakes (MP_CAPABLE, MP_JOIN) and closes at a fraction of the cost."),
    ])

    public static let topology = ObjectShape("topology", "A Pathbed lab.", [
        Field("name", .string(pattern: LabName.pattern), required: true,
              "The lab's name (lower case, at most 24 characters): its namespaces are named pb.NAME and pb.NAME.NODE."),
        Field("description", .string(pattern: nil), "Free text."),
        Field("hosts", .map(.object(host)), "The machines the lab spans (default: this machine only, named `local`)."),
        Field("tunnel", .enumeration(["gretap", "vxlan"]), "How links between hosts are carried: gretap (default; GRE with a key, 42 bytes per frame) or vxlan (UDP 4789, 50 bytes; for kernels without GRE)."),
        Field("profiles", .map(.object(profile)), "Named link profiles."),
        Field("nodes", .map(.object(node)), required: true, "Network namespaces."),
        Field("bridges", .map(.object(bridge)), "Linux bridges."),
        Field("links", .list(.object(link), minItems: 0, maxItems: nil), "Links between node interfaces and bridges."),
        Field("workloads", .list(.object(workload), minItems: 0, maxItems: nil), "Traffic to run (`pathbed run`)."),
        Field("schedule", .list(.object(fault), minItems: 0, maxItems: nil), "Faults injected during the run."),
        Field("run", .object(run), "Run settings."),
    ])

    /// Every object shape, for the schema's `$defs` and for tests.
    public static let all: [ObjectShape] = [
        topology, host, vm, profile, loss, gilbertElliott, reorder, node, route, mptcp, mptcpLimits, mptcpEndpoint,
        bridge, link, endpoint, directionalProfile, workload, fault, run,
    ]
}
