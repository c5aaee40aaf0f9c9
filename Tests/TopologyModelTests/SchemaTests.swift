import Foundation
import Testing
@testable import TopologyModel

/// The JSON Schema and the model cannot drift: both come from `Shapes`, the decoder reads every
/// field of every shape, the committed schema is the generated one, and a real JSON Schema
/// validator accepts the examples and refuses what the decoder refuses.
@Suite struct SchemaTests {
    @Test func committedSchemaIsCurrent() throws {
        let committed = try String(contentsOfFile: repoPath("schema/topology.schema.json"), encoding: .utf8)
        #expect(committed == TopologySchema.json(), "schema/topology.schema.json is stale: run `swift run pathbed schema > schema/topology.schema.json`")
    }

    @Test func decoderReadsEveryFieldOfEveryShape() throws {
        var read: Set<String> = []
        for path in files(in: "topologies", ending: ".yaml") + [repoPath("Tests/TopologyModelTests/Fixtures/everything.yaml")] {
            let (result, fields) = TopologyLoader.loadTracingFields(data: try Data(contentsOf: URL(fileURLWithPath: path)), file: path)
            _ = try result.get()
            read.formUnion(fields)
        }
        let declared = Set(Shapes.all.flatMap { s in s.fields.map { "\(s.name).\($0.key)" } })
        #expect(declared.subtracting(read).sorted() == [], "fields in the schema that the decoder never reads")
    }

    @Test func examplesPointEditorsAtTheSchema() throws {
        for path in files(in: "topologies", ending: ".yaml") {
            let first = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").first ?? ""
            #expect(first == "# yaml-language-server: $schema=../schema/topology.schema.json", "\(path)")
        }
    }

    /// Runs Python's jsonschema (Debian: python3-jsonschema, python3-yaml) over files.
    func jsonSchemaVerdicts(_ paths: [String]) throws -> [String: Bool] {
        let script = """
            import json, sys, yaml, jsonschema
            schema = json.load(open(sys.argv[1]))
            v = jsonschema.Draft202012Validator(schema)
            for p in sys.argv[2:]:
                errors = list(v.iter_errors(yaml.safe_load(open(p))))
                print(("ok " if not errors else "bad ") + p)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, repoPath("schema/topology.schema.json")] + paths
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "python3 with jsonschema and yaml is needed (scripts/setup installs python3-jsonschema python3-yaml): \(errText)")
        var verdicts: [String: Bool] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            verdicts[String(parts[1])] = parts[0] == "ok"
        }
        return verdicts
    }

    @Test func jsonSchemaAcceptsExamplesAndRefusesUnknownKeys() throws {
        let good = files(in: "topologies", ending: ".yaml") + [repoPath("Tests/TopologyModelTests/Fixtures/everything.yaml")]
        let badKeys = ["unknown-key", "bad-lab-name", "missing-name", "mptcp-limit", "mtu-too-small", "bad-unit"]
            .map { repoPath("Tests/TopologyModelTests/Corpus/\($0).yaml") }
        let verdicts = try jsonSchemaVerdicts(good + badKeys)
        for p in good { #expect(verdicts[p] == true, "schema refuses \(p), which pathbed accepts") }
        for p in badKeys { #expect(verdicts[p] == false, "schema accepts \(p), which pathbed refuses") }
    }
}

@Suite struct ReferenceDocTests {
    @Test func committedReferenceIsCurrent() throws {
        let committed = try String(contentsOfFile: repoPath("docs/reference.md"), encoding: .utf8)
        #expect(committed == TopologySchema.markdown(), "docs/reference.md is stale: run `swift run pathbed schema --markdown > docs/reference.md`")
    }
}
