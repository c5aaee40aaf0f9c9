// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Pathbed",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pathbed", targets: ["pathbed"]),
        .library(name: "TopologyModel", targets: ["TopologyModel"]),
        .library(name: "Engine", targets: ["Engine"]),
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
        // Typed Swift API over libnl: links, addresses, routes, rules, qdiscs, sysctls, MPTCP.
        .target(name: "Netlink", dependencies: ["CNetlink", "CShims"]),
        // The typed, validated model of a topology file. Never touches the kernel.
        .target(name: "TopologyModel", dependencies: [.product(name: "Yams", package: "Yams")]),
        // Series, recovery time, CSV, SVG plots and tables from measurements. Measures nothing itself.
        .target(name: "Report"),
        // Planner, executors (local netlink, the agent, a fake), journal, reconcile, the VM pair, runs.
        .target(name: "Engine", dependencies: ["TopologyModel", "Netlink", "Report"]),
        // The command line: wiring only.
        .executableTarget(name: "pathbed", dependencies: [
            "TopologyModel", "Engine",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Benchmarks: commands that print figures (not tests).
        .executableTarget(name: "pathbed-bench", dependencies: [
            "TopologyModel", "Engine", "Netlink",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "TopologyModelTests", dependencies: ["TopologyModel"],
                    exclude: ["Corpus", "Fixtures"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "TopologyModel", "Report"]),
        .testTarget(name: "ReportTests", dependencies: ["Report"]),
        // Root only: real namespaces, real traffic, driving the built `pathbed` binary.
        .testTarget(name: "IntegrationTests", dependencies: ["TopologyModel"]),
    ],
    swiftLanguageModes: [.v6]
)
