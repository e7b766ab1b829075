import DistriTestSupport
import Foundation
import Testing

/// The systemd units in contrib/systemd pass `systemd-analyze verify`, pointed at the built
/// executables (verify checks that the program exists). Skipped, with a note, without systemd.
@Suite struct ServiceUnitTests {
    private static let units = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../contrib/systemd").standardizedFileURL

    @Test("contrib/systemd's units pass systemd-analyze verify", arguments: ["distri-node", "distri-peer"])
    func unitVerifies(tool: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            print("systemd-analyze is not installed: \(tool).service not verified (README, deployment)")
            return
        }
        let text = try String(contentsOf: Self.units.appendingPathComponent("\(tool).service"), encoding: .utf8)
        let installed = tool == "distri-node" ? "/usr/local/bin/distri-node" : "%h/.local/bin/distri-peer"
        #expect(text.contains("ExecStart=\(installed) "), "the unit runs \(installed)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("distri-units-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let unit = directory.appendingPathComponent("\(tool).service")
        try text.replacingOccurrences(of: installed, with: builtExecutable(tool).path)
            .write(to: unit, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        process.arguments = ["verify", unit.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(said)")
        #expect(!said.contains(tool), "systemd-analyze found fault with the unit: \(said)")
    }
}
