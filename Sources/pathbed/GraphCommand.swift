import ArgumentParser
import TopologyModel

struct Graph: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw a lab as Graphviz dot or Mermaid.",
        discussion: "Hosts are clusters, link profiles label the edges, links across hosts are dashed. Example: pathbed graph lab.yaml | dot -Tsvg > lab.svg"
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case dot, mermaid }

    @Argument(help: "Topology file.", completion: .file(extensions: ["yaml", "yml"]))
    var file: String

    @Option(help: "Output format: \(Format.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: Format = .dot

    func run() throws {
        let t = try loadTopology(file)
        print(format == .dot ? TopologyGraph.dot(t) : TopologyGraph.mermaid(t), terminator: "")
    }
}
