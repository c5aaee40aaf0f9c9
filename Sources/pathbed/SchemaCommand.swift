import ArgumentParser
import TopologyModel

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the JSON Schema of topology files.",
        discussion: "Point yaml-language-server at it with a first line `# yaml-language-server: $schema=PATH`; schema/topology.schema.json is this output."
    )

    func run() throws { print(TopologySchema.json(), terminator: "") }
}
