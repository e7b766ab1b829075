import Foundation
import Yams

/// A configuration file of a long-running command, checked before its values are read: a JSON
/// (`.json`) or YAML (`.yaml`, `.yml`) mapping of setting keys to values (text, numbers, true or
/// false, or a list of them), flat, every key one the command knows, each once. A file that breaks
/// these rules is an error naming its line.
public struct ConfigurationFile: Sendable {
    /// The file's format, from its extension.
    public enum Format: Sendable {
        case json, yaml
    }

    /// The largest configuration file read.
    public static let maxBytes = 1 << 20

    public let path: String
    public let format: Format
    /// The line each key is on (1-based).
    public let lines: [String: Int]

    /// Reads and checks the file at `path` against the keys of `specs`.
    public static func load(_ path: String, specs: [SettingSpec]) throws -> ConfigurationFile {
        let format: Format
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "json": format = .json
        case "yaml", "yml": format = .yaml
        default:
            throw CommandFailure.configuration(
                "configuration file \(path): name it .json, .yaml or .yml (its extension says its format)")
        }
        let text = try read(path)
        let keys: [(key: String, line: Int)]
        do {
            switch format {
            case .yaml: keys = try yamlKeys(text, path: path)
            case .json: keys = try jsonKeys(text, path: path)
            }
        } catch let duplicate as DuplicateKey {
            let lines = linesOf(key: duplicate.key, in: text)
            throw CommandFailure.configuration(
                "\(path):\(lines.dropFirst().first ?? 1): '\(duplicate.key)' is set twice (first on line \(lines.first ?? 1))"
            )
        }
        let known = Set(specs.map(\.key))
        var lines: [String: Int] = [:]
        for (key, line) in keys {
            if let first = lines[key] {
                throw CommandFailure.configuration("\(path):\(line): '\(key)' is set twice (first on line \(first))")
            }
            guard known.contains(key) else {
                let hint = closest(to: key, among: known).map { " (did you mean '\($0)'?)" } ?? ""
                throw CommandFailure.configuration(
                    "\(path):\(line): unknown key '\(key)'\(hint)",
                    hint: "the keys are the long flags' names: \(specs.map(\.key).joined(separator: ", "))")
            }
            lines[key] = line
        }
        return ConfigurationFile(path: path, format: format, lines: lines)
    }

    private static func read(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CommandFailure.configuration("cannot read configuration file \(path): no such file, or not readable")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maxBytes + 1)) ?? Data()
        if data.count > maxBytes {
            throw CommandFailure.configuration("configuration file \(path) is larger than \(maxBytes >> 20) MiB")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CommandFailure.configuration("configuration file \(path) is not UTF-8 text")
        }
        return text
    }

    /// The top-level keys of a YAML mapping with their lines; values must be scalars or lists of them.
    private static func yamlKeys(_ text: String, path: String) throws -> [(key: String, line: Int)] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch YamlError.duplicatedKeysInMapping(let duplicates, _) {
            throw DuplicateKey(key: duplicates.first ?? "?")
        } catch let error as YamlError {
            throw CommandFailure.configuration("\(path):\(describe(error))")
        } catch {
            throw CommandFailure.configuration("\(path): not YAML: \(error)")
        }
        guard let root else { return [] }
        guard let mapping = root.mapping else {
            throw CommandFailure.configuration(
                "\(path):\(root.mark?.line ?? 1): the file must be a mapping of keys to values")
        }
        return try mapping.map { key, value in
            let line = key.mark?.line ?? 1
            guard let name = key.scalar?.string else {
                throw CommandFailure.configuration("\(path):\(line): a key must be text")
            }
            let scalarList = value.sequence.map { items in items.allSatisfy { $0.scalar != nil } } ?? false
            guard value.scalar != nil || scalarList else {
                throw CommandFailure.configuration(
                    "\(path):\(line): '\(name)' must be a value or a list of values, not a mapping"
                        + " (the file is flat: one key per setting)")
            }
            return (name, line)
        }
    }

    /// The top-level keys of a JSON object with their lines; values must be scalars or arrays of them.
    private static func jsonKeys(_ text: String, path: String) throws -> [(key: String, line: Int)] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch let error as NSError {
            let detail = error.userInfo[NSDebugDescriptionErrorKey] as? String ?? error.localizedDescription
            let line = detail.firstMatch(of: /character (\d+)/).flatMap { Int($0.1) }.map {
                lineOf(offset: $0, in: text)
            }
            throw CommandFailure.configuration("\(path):\(line.map { "\($0):" } ?? "") not JSON: \(detail)")
        }
        guard let dictionary = object as? [String: Any] else {
            throw CommandFailure.configuration("\(path):1: the file must be a JSON object of keys to values")
        }
        for (key, value) in dictionary {
            let scalarList = (value as? [Any]).map { $0.allSatisfy { !($0 is [Any] || $0 is [String: Any]) } } ?? false
            guard !(value is [String: Any]), value is [Any] ? scalarList : true else {
                throw CommandFailure.configuration(
                    "\(path):\(lineOf(quoted: key, in: text)): '\(key)' must be a value or a list of values, not an object"
                        + " (the file is flat: one key per setting)")
            }
        }
        // JSON is YAML: the YAML reading gives each key's line, a key given twice included; JSON that
        // YAML refuses (tabs) falls back to each key's first quoted occurrence.
        do {
            return try yamlKeys(text, path: path)
        } catch let duplicate as DuplicateKey {
            throw duplicate
        } catch {}
        return dictionary.keys.sorted().map { ($0, lineOf(quoted: $0, in: text)) }
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            "\(mark.line):\(mark.column): not YAML: \(problem)"
        default:
            " not YAML: \(error)"
        }
    }

    private static func lineOf(offset: Int, in text: String) -> Int {
        1 + text.utf8.prefix(offset).count { $0 == UInt8(ascii: "\n") }
    }

    /// The lines (1-based) that set `key`: `key:` or `"key":` after any spaces.
    private static func linesOf(key: String, in text: String) -> [Int] {
        text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { index, line in
            let trimmed = line.drop { $0 == " " || $0 == "\t" || $0 == "{" || $0 == "," }
            return trimmed.hasPrefix("\(key):") || trimmed.hasPrefix("\"\(key)\"") ? index + 1 : nil
        }
    }

    private static func lineOf(quoted key: String, in text: String) -> Int {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (lines.firstIndex { $0.contains("\"\(key)\"") } ?? 0) + 1
    }

    /// The known key nearest to a misspelt one, if it is near (at most 2 edits).
    static func closest(to key: String, among known: Set<String>) -> String? {
        known.map { ($0, editDistance(key, $0)) }.filter { $0.1 <= 2 }.min { ($0.1, $0.0) < ($1.1, $1.0) }?.0
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = Swift.min(
                    previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}

/// A key a YAML mapping (or JSON object) sets twice.
private struct DuplicateKey: Error {
    var key: String
}
