import ArgumentParser
import TopologyModel

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the JSON Schema of topology files (or their reference in Markdown).",
        discussion: "Point yaml-language-server at it with a first line `# yaml-language-server: $schema=PATH`; schema/topology.schema.json is this output."
    )

    @Flag(help: "Print the reference of every key as Markdown instead (docs/reference.md).")
    var markdown = false

    func run() throws { print(markdown ? TopologySchema.markdown() : TopologySchema.json(), terminator: "") }
}
