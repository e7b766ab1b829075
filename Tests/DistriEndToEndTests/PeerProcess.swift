import Distri
import Foundation

/// Runs `distri-peer` with `arguments` to the end (at most `timeout`), with its output.
func runPeerCommand(_ arguments: [String], timeout: TimeInterval = 60) throws -> (
    status: Int32, output: String, errors: String
) {
    let process = Process()
    process.executableURL = builtExecutable("distri-peer")
    process.arguments = arguments + (arguments.contains("--cloud") ? ["--ca", E2ETLS.caFile] : [])
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    timer.cancel()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

/// A `distri-peer serve` daemon started by a test and stopped by its PID.
final class PeerDaemonProcess {
    let process = Process()
    private(set) var address = ""

    struct StartError: Error, CustomStringConvertible { var description: String }

    init(home: String, cloud: String, refresh: Double) throws {
        process.executableURL = builtExecutable("distri-peer")
        process.arguments = [
            "serve", "--home", home, "--cloud", cloud, "--refresh", "\(refresh)", "--ca", E2ETLS.caFile,
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let reader = output.fileHandleForReading
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("\n"), Date() < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty { throw StartError(description: "the daemon exited before listening: \(text)") }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let range = text.range(of: "listening on ") else {
            throw StartError(description: "the daemon printed no address: \(text)")
        }
        address = String(text[range.upperBound...].prefix { !$0.isNewline })
    }

    /// SIGTERM, then wait.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
