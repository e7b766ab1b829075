import Foundation
import Testing

/// docs/architecture.md's table of targets matches Package.swift: the same targets, each with the
/// same project targets it depends on.
@Suite struct ArchitectureDocTests {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardizedFileURL

    /// Package.swift's targets (tests, test support and micro-benchmarks left out) with their
    /// dependencies among the project's own targets.
    static func packageTargets() throws -> [String: Set<String>] {
        let text = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let declarations = text.split(separator: /\n\s*\.(target|executableTarget|systemLibrary|testTarget)\(/)
        var found: [String: [String]] = [:]
        var kinds: [String: String] = [:]
        for match in text.matches(of: /\n\s*\.(target|executableTarget|systemLibrary|testTarget)\(\s*name: "([^"]+)"/) {
            kinds[String(match.2)] = String(match.1)
        }
        for declaration in declarations.dropFirst() {
            guard let name = declaration.firstMatch(of: /name: "([^"]+)"/)?.1 else { continue }
            found[String(name)] = declaration.matches(of: /"([A-Za-z-]+)"/).map { String($0.1) }
        }
        let ours = Set(found.keys)
        var targets: [String: Set<String>] = [:]
        for (name, words) in found
        where kinds[name] != "testTarget" && name != "DistriTestSupport" && name != "HotPaths" {
            targets[name] = Set(words.filter { ours.contains($0) && $0 != name })
        }
        return targets
    }

    /// The rows of the doc's table: `| `target` | dependencies, comma-separated | ... |`.
    static func documentedTargets() throws -> [String: Set<String>] {
        let text = try String(
            contentsOf: root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        var targets: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") {
            guard let row = line.firstMatch(of: /^\| `([A-Za-z-]+)` \|([^|]*)\|/) else { continue }
            let dependencies = row.2.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            targets[String(row.1)] = Set(dependencies.filter { !$0.isEmpty })
        }
        return targets
    }

    @Test("docs/architecture.md names every target of Package.swift with its dependencies")
    func layersMatchThePackage() throws {
        let package = try Self.packageTargets()
        let documented = try Self.documentedTargets()
        #expect(package.count > 10, "Package.swift was not read: \(package)")
        #expect(Set(documented.keys) == Set(package.keys), "targets differ")
        for (name, dependencies) in package {
            #expect(documented[name] == dependencies, "\(name): Package.swift has \(dependencies.sorted())")
        }
        // The node tool does not link the peer library.
        #expect(package["distri-node"]?.contains("DistriPeer") == false)
    }
}
