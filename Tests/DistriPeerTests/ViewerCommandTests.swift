import DistriCommandLine
import Foundation
import Testing

@Suite("--viewer command lines: words, quotes, and the program found before a view is spent")
struct ViewerCommandTests {
    @Test("words split on blanks; quotes and backslashes group; an unclosed quote is refused")
    func words() throws {
        let command = try ViewerCommand(#"ls -l 'a b' "c \"d\"" e\ f"#, path: "/bin:/usr/bin")
        #expect(command.executable.hasSuffix("/ls"))
        #expect(command.arguments == ["-l", "a b", #"c "d""#, "e f"])
        #expect(throws: ViewerCommand.Problem.self) { try ViewerCommand("ls 'open", path: "/bin:/usr/bin") }
        #expect(throws: ViewerCommand.Problem.self) { try ViewerCommand("   ", path: "/bin:/usr/bin") }
    }

    @Test("a program not on PATH, or a path that is not executable, is refused by name")
    func programMustExist() throws {
        #expect(throws: ViewerCommand.Problem(description: "the viewer 'no-such-viewer-xyz' is not found on PATH")) {
            try ViewerCommand("no-such-viewer-xyz -b", path: "/bin:/usr/bin")
        }
        let plain = FileManager.default.temporaryDirectory.appendingPathComponent("viewer-\(UUID().uuidString).txt")
            .path
        #expect(
            FileManager.default.createFile(
                atPath: plain, contents: Data("x".utf8), attributes: [.posixPermissions: 0o644]))
        defer { try? FileManager.default.removeItem(atPath: plain) }
        #expect(throws: ViewerCommand.Problem(description: "the viewer '\(plain)' is not an executable file")) {
            try ViewerCommand(plain, path: "/bin")
        }
    }
}
