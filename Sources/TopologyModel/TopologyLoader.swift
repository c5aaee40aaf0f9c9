import Foundation

/// Reads, decodes and validates a topology file, reporting every problem at once.
public enum TopologyLoader {
    /// Loads the file at `path`. Throws `TopologyErrors` naming file, line, column and key of each problem.
    public static func load(path: String) throws -> Topology {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw TopologyErrors([Diagnostic(SourceLocation(file: path, line: 0, column: 0), path: "",
                                             "cannot read the file: \(reason)", hint: "check the path and permissions")])
        }
        return try load(data: data, file: path)
    }

    /// Loads a topology from bytes; `file` names it in messages.
    public static func load(data: Data, file: String) throws -> Topology {
        let (result, _) = loadTracingFields(data: data, file: file)
        return try result.get()
    }

    /// As `load`, and also reports which shape fields the decoder read (for the schema drift test).
    public static func loadTracingFields(data: Data, file: String) -> (Result<Topology, TopologyErrors>, Set<String>) {
        let reader = YAMLReader(file: file)
        guard let root = reader.parse(data) else {
            return (.failure(TopologyErrors(reader.diagnostics)), reader.fieldsRead)
        }
        var decoder = TopologyDecoder(reader: reader)
        let draft = decoder.decode(root)
        var validator = TopologyValidator(draft, decoder: decoder, reader: reader)
        let topology = validator.validate()
        if !reader.diagnostics.isEmpty {
            let sorted = reader.diagnostics.enumerated().sorted {
                ($0.element.location.line, $0.element.location.column, $0.offset) < ($1.element.location.line, $1.element.location.column, $1.offset)
            }.map(\.element)
            return (.failure(TopologyErrors(sorted)), reader.fieldsRead)
        }
        return (.success(topology), reader.fieldsRead)
    }

    /// The length of a run: `run.duration`, or until the last workload ends.
    public static func runLength(of topology: Topology) -> Duration? { TopologyValidator.runLength(topology) }
}
