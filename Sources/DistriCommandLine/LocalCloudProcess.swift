import Distri
import Foundation

/// A `distri-node local` child process (the `distri-node` beside this tool), started and stopped by
/// this process.
public final class LocalCloudProcess {
    public let process: Process
    public let addresses: [NodeAddress]
    /// Client TLS trusting the child's throw-away authority (nil for an `--insecure` child).
    public let tls: ClusterTLS?

    private let input: Pipe

    private init(process: Process, addresses: [NodeAddress], tls: ClusterTLS?, input: Pipe) {
        self.process = process
        self.addresses = addresses
        self.tls = tls
        self.input = input
    }

    /// The child did not start or did not list its nodes.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts the child and waits for the line that lists the cloud's addresses (and the one naming
    /// its authority's certificate, unless `insecure`).
    public static func start(nodes: Int, insecure: Bool = false, extraArguments: [String] = []) throws
        -> LocalCloudProcess
    {
        let process = Process()
        process.executableURL = SiblingTool.url("distri-node")
        process.arguments =
            ["local", "--nodes", "\(nodes)", "--log-level", "warning", "--stop-on-eof", "--no-cloud-file"]
            + (insecure ? ["--insecure"] : []) + extraArguments
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        // The child stops when this pipe closes, which happens when this process exits for any reason.
        process.standardInput = input
        try process.run()
        let reader = output.fileHandleForReading
        var text = ""
        while !text.contains("cloud: ") || !text.hasSuffix("\n") {
            let chunk = reader.availableData
            if chunk.isEmpty {
                throw StartError(description: "local cloud exited before listing its nodes:\n\(text)")
            }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let line = text.split(separator: "\n").first { $0.hasPrefix("cloud: ") } ?? ""
        guard let addresses = NodeAddress.parseList(String(line.dropFirst("cloud: ".count))), !addresses.isEmpty
        else {
            process.terminate()
            throw StartError(description: "could not read the cloud's addresses from: \(line)")
        }
        var tls: ClusterTLS?
        if !insecure {
            guard let caLine = text.split(separator: "\n").first(where: { $0.hasPrefix("ca: ") }) else {
                process.terminate()
                throw StartError(description: "the local cloud named no CA certificate:\n\(text)")
            }
            do {
                tls = try ClusterTLS.load(authority: String(caLine.dropFirst("ca: ".count)))
            } catch {
                process.terminate()
                throw error
            }
        }
        return LocalCloudProcess(process: process, addresses: addresses, tls: tls, input: input)
    }

    /// Stops the child gracefully and waits for it.
    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
