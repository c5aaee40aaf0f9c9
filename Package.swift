// swift-tools-version:6.0
import PackageDescription

// Targets in layers, each depending only on those above it in this list (docs/architecture.md).
let package = Package(
    name: "Pathbed",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pathbed", targets: ["pathbed"]),
        .library(name: "TopologyModel", targets: ["TopologyModel"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Runs", targets: ["Runs"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        // libnl-3 / libnl-route-3 / libnl-genl-3 (Debian: libnl-3-dev libnl-route-3-dev libnl-genl-3-dev).
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev", "libnl-genl-3-dev"])]),
        // The only code that switches namespaces (setns/unshare), thread by thread.
        .target(name: "CShims", dependencies: ["CNetlink"]),
        // The values of the netlink API (link specs, routes, qdisc trees, what the kernel reports): no kernel calls.
        .target(name: "NetlinkTypes"),
        // Typed Swift API over libnl: links, addresses, routes, rules, qdiscs, sysctls, MPTCP.
        .target(name: "Netlink", dependencies: ["CNetlink", "CShims", "NetlinkTypes"]),
        // The typed, validated model of a topology file. Never touches the kernel.
        .target(name: "TopologyModel", dependencies: [.product(name: "Yams", package: "Yams")]),
        // Operations and plans, queue sizing, ownership, the reconcile diff, fault actions as data,
        // capabilities and what a plan needs of them. Pure: touches no kernel and no host.
        .target(name: "Planning", dependencies: ["TopologyModel", "NetlinkTypes"]),
        // Where operations run: the host executor protocol, this machine through netlink, other
        // machines through the agent over ssh, and the built-in VM pair (Provisioning/).
        .target(name: "Hosts", dependencies: ["Planning", "Netlink", "NetlinkTypes", "CShims", .product(name: "Yams", package: "Yams")]),
        // A recording fake of a host, for unit tests only (as swift-nio keeps NIOEmbedded apart).
        .target(name: "HostTesting", dependencies: ["Hosts", "Planning", "TopologyModel"]),
        // Results: the format of results.json, statistics, recovery time, CSV, SVG plots, tables. Measures nothing.
        .target(name: "Report"),
        // Labs: up, down, status, reconcile, the journal; every kernel change through a host executor.
        .target(name: "Engine", dependencies: ["TopologyModel", "Planning", "Hosts"]),
        // Runs: workloads (one per file), faults, the schedule on one clock, sampling, MPTCP watching, plugins.
        .target(name: "Runs", dependencies: ["TopologyModel", "Planning", "NetlinkTypes", "Hosts", "Engine", "Report"]),
        // The command line: wiring only.
        .executableTarget(name: "pathbed", dependencies: [
            "TopologyModel", "Planning", "Hosts", "Engine", "Runs", "Report",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Benchmarks: commands that print figures (not tests), built on the product's own layers.
        .executableTarget(name: "pathbed-bench", dependencies: [
            "TopologyModel", "Planning", "Hosts", "Engine", "Runs", "Report", "Netlink",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "TopologyModelTests", dependencies: ["TopologyModel"],
                    exclude: ["Corpus", "Fixtures"]),
        .testTarget(name: "PlanningTests", dependencies: ["Planning", "TopologyModel", "NetlinkTypes"]),
        .testTarget(name: "HostsTests", dependencies: ["Hosts", "HostTesting", "Planning", "TopologyModel"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "HostTesting", "Hosts", "Planning", "TopologyModel"]),
        .testTarget(name: "RunsTests", dependencies: ["Runs", "Engine", "HostTesting", "Hosts", "Planning", "TopologyModel", "Report"]),
        .testTarget(name: "ReportTests", dependencies: ["Report"]),
        // Root only: real namespaces, real traffic, driving the built `pathbed` binary.
        .testTarget(name: "IntegrationTests", dependencies: ["TopologyModel", "Planning"]),
    ],
    swiftLanguageModes: [.v6]
)
