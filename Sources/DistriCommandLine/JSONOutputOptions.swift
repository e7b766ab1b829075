import ArgumentParser
import DistriCore
import Foundation
import Synchronization

/// `--json` and `--pretty`, the same on every command of both tools: JSON is compact (one line, keys
/// sorted, slashes not escaped) unless `--pretty` asks for it indented.
public struct JSONOutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of text (compact: one line, keys sorted).")
    public var json = false

    @Flag(name: .long, help: "Print JSON indented for people (implies --json).")
    public var pretty = false

    public init() {}

    /// Whether the command prints JSON.
    public var enabled: Bool { json || pretty }

    public mutating func validate() throws {
        JSONStyle.pretty.store(pretty, ordering: .relaxed)
    }
}

/// The JSON style of this process, set once when the command line is parsed.
public enum JSONStyle {
    /// Whether `--pretty` was given.
    static let pretty = Atomic<Bool>(false)

    /// Whether JSON output is indented.
    public static var isPretty: Bool { pretty.load(ordering: .relaxed) }

    /// `value` encoded in this process's style (keys sorted, slashes not escaped).
    public static func text(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            isPretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

extension JSONValue {
    /// This value as a command prints it: compact, or indented under `--pretty`.
    public var outputText: String { JSONStyle.isPretty ? prettyJSONText : jsonText }
}
