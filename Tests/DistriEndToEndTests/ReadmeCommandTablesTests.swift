import DistriTestSupport
import Foundation
import Testing

/// The README's command tables of both tools agree with their `--help`: every command a row names
/// exists, every option a row's command column shows is one of that command's, every command has a
/// row, and every option of a command is named somewhere in its rows (options every command shares,
/// like `--cloud` and `--json`, are described once, outside the tables).
@Suite struct ReadmeCommandTablesTests {
    private static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../README.md").standardizedFileURL.path

    /// Options described once for all commands, outside the tables.
    private static let shared: Set<String> = [
        "--help", "--version", "--name", "--home", "--cloud", "--ca", "--insecure", "--log-level", "--log-format",
        "--json", "--pretty",
    ]

    /// One command's help: its own options and its subcommands (with the default one, if any).
    struct Help {
        var options: Set<String>
        var subcommands: [String]
        var defaultSubcommand: String?
    }

    private static func help(_ tool: String, _ path: [String]) throws -> Help {
        let result = try runBuilt(tool, path + ["--help"], environment: ["COLUMNS": "200", "PATH": "/usr/bin:/bin"])
        #expect(result.status == 0, "\(tool) \(path.joined(separator: " ")) --help: \(result.errors)")
        var help = Help(options: [], subcommands: [], defaultSubcommand: nil)
        var section = ""
        for line in result.output.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" "), line.hasSuffix(":") {
                section = String(line)
                continue
            }
            let trimmed = line.drop { $0 == " " }
            guard line.hasPrefix("  "), !line.hasPrefix("    ") || section == "OPTIONS:" else { continue }
            if section == "OPTIONS:", trimmed.hasPrefix("-"), line.hasPrefix("  -") {
                let head = trimmed.prefix { $0 != " " || trimmed.hasPrefix("-h, ") }
                for match in String(head).matches(of: /--[a-z0-9][a-z0-9-]*/) { help.options.insert(String(match.0)) }
            } else if section == "SUBCOMMANDS:",
                let entry = String(line).firstMatch(of: /^  ([a-z][a-z0-9-]*)( \(default\))?\s\s/)
            {
                help.subcommands.append(String(entry.1))
                if entry.2 != nil { help.defaultSubcommand = String(entry.1) }
            }
        }
        return help
    }

    /// Every command of `tool` (paths of subcommand names) with its help.
    private static func commands(_ tool: String) throws -> [[String]: Help] {
        var all: [[String]: Help] = [:]
        var pending: [[String]] = [[]]
        // Bounded: the command tree is finite and each path is visited once.
        while let path = pending.popLast(), all.count < 200 {
            let help = try help(tool, path)
            all[path] = help
            pending.append(contentsOf: help.subcommands.filter { $0 != "help" }.map { path + [$0] })
        }
        return all
    }

    @Test("the README's command tables match the --help of distri-node, distri-peer and distri-bench")
    func tablesMatchHelp() throws {
        let text = try String(contentsOfFile: Self.readme, encoding: .utf8)
        for tool in ["distri-node", "distri-peer", "distri-bench"] {
            let commands = try Self.commands(tool)
            var described: [[String]: String] = [:]
            for line in text.split(separator: "\n") where line.hasPrefix("| `\(tool) ") {
                let cells = line.split(separator: "|", omittingEmptySubsequences: false)
                // The command column: up to the closing backquote (`\|` separates alternatives).
                let command = String(line.dropFirst(3).prefix { $0 != "`" })
                var words = command.split(separator: " ").dropFirst().map(String.init)
                var paths: [[String]] = [[]]
                // Bounded by the words of the row.
                while let word = words.first {
                    let alternatives = word.components(separatedBy: "\\|")
                    let next = paths.flatMap { path in alternatives.map { path + [$0] } }
                    if next.allSatisfy({ commands[$0] != nil }) {
                        paths = next
                        words.removeFirst()
                    } else {
                        break
                    }
                }
                paths = paths.map { path in
                    guard let fallback = commands[path]?.defaultSubcommand else { return path }
                    return path + [fallback]
                }
                #expect(paths.allSatisfy { commands[$0] != nil }, "README row for an unknown command: \(command)")
                let known = paths.reduce(into: Set<String>()) { $0.formUnion(commands[$1]?.options ?? []) }
                for match in command.matches(of: /--[a-z0-9][a-z0-9-]*/) where !known.contains(String(match.0)) {
                    Issue.record(
                        "README: `\(command)` shows \(match.0), which `\(tool) \(paths[0].joined(separator: " ")) --help` does not have"
                    )
                }
                for path in paths { described[path, default: ""] += cells.dropFirst().joined(separator: "|") }
            }
            for (path, help) in commands where help.subcommands.isEmpty {
                guard let rows = described[path] else {
                    Issue.record("README: no row for `\(tool) \(path.joined(separator: " "))`")
                    continue
                }
                for option in help.options.subtracting(Self.shared).sorted() where !rows.contains(option) {
                    Issue.record(
                        "README: the rows of `\(tool) \(path.joined(separator: " "))` do not name its option \(option)")
                }
            }
        }
    }
}
