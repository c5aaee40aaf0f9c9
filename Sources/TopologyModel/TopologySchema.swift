import Foundation

/// The JSON Schema (draft 2020-12) of the topology format, generated from `Shapes`, the same
/// table the decoder reads keys through. `pathbed schema` prints it; the copy in schema/ is
/// checked against it by a test, so editors (yaml-language-server) see exactly what we accept.
public enum TopologySchema {
    public static let id = "https://pathbed.dev/schema/topology.schema.json"

    public static func json() -> String {
        var defs: [String: JSONValue] = [:]
        for shape in Shapes.all where shape !== Shapes.topology { defs[shape.name] = object(shape) }
        guard case var .object(root) = object(Shapes.topology) else { return "" }
        root["$schema"] = .string("https://json-schema.org/draft/2020-12/schema")
        root["$id"] = .string(id)
        root["title"] = .string("Pathbed topology")
        root["$defs"] = .object(defs)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(JSONValue.object(root)), as: UTF8.self) + "\n"
    }

    /// Shapes whose entries may be left empty (`router:` declares a node with defaults).
    static let nullable: Set<String> = ["node", "bridge"]

    static func object(_ shape: ObjectShape) -> JSONValue {
        var properties: [String: JSONValue] = [:]
        for f in shape.fields {
            guard case var .object(p) = schema(f.type) else { continue }
            p["description"] = .string(f.description)
            properties[f.key] = .object(p)
        }
        var o: [String: JSONValue] = [
            "type": .string("object"),
            "description": .string(shape.description),
            "properties": .object(properties),
            "additionalProperties": .bool(false),
        ]
        let required = shape.fields.filter(\.required).map { JSONValue.string($0.key) }
        if !required.isEmpty { o["required"] = .array(required) }
        return .object(o)
    }

    static func string(pattern: String?) -> JSONValue {
        var o: [String: JSONValue] = ["type": .string("string")]
        if let pattern { o["pattern"] = .string(pattern) }
        return .object(o)
    }

    static func schema(_ type: ValueType) -> JSONValue {
        switch type {
        case .name: return string(pattern: Patterns.name)
        case let .string(pattern): return string(pattern: pattern)
        case .bool: return .object(["type": .string("boolean")])
        case let .integer(min, max):
            var o: [String: JSONValue] = ["type": .string("integer")]
            if min != Int.min { o["minimum"] = .number(Double(min)) }
            if max != Int.max { o["maximum"] = .number(Double(max)) }
            return .object(o)
        case .bitrate: return string(pattern: Patterns.bitrate)
        case .duration: return string(pattern: Patterns.duration)
        case .percent: return string(pattern: Patterns.percent)
        case .ipAddress: return string(pattern: "^[0-9a-fA-F.:]+$")
        case .ipNetwork: return string(pattern: "^[0-9a-fA-F.:]+/[0-9]{1,3}$")
        case let .enumeration(values): return .object(["enum": .array(values.map(JSONValue.string))])
        case let .object(shape):
            let ref = JSONValue.object(["$ref": .string("#/$defs/\(shape.name)")])
            return nullable.contains(shape.name) ? .object(["anyOf": .array([ref, .object(["type": .string("null")])])]) : ref
        case let .map(value):
            return .object(["anyOf": .array([.object(["type": .string("object"), "additionalProperties": schema(value)]), .object(["type": .string("null")])])])
        case let .list(item, minItems, maxItems):
            var o: [String: JSONValue] = ["type": .string("array"), "items": schema(item)]
            if minItems > 0 { o["minItems"] = .number(Double(minItems)) }
            if let maxItems { o["maxItems"] = .number(Double(maxItems)) }
            return minItems > 0 ? .object(o) : .object(["anyOf": .array([.object(o), .object(["type": .string("null")])])])
        case let .oneOf(types): return .object(["anyOf": .array(types.map(schema))])
        case .any: return .object([:])
        }
    }
}
