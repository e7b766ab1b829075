import ArgumentParser
import Distri
import Foundation

/// How a command-line client reaches the cloud: TLS checked against the cluster's authority, or plain
/// TCP. Shared by `distri-node` and `distri-peer`.
public struct ClientTLSOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The cluster CA certificate (default: $DISTRI_CA, else the local cloud's ~/.distri/cloud.ca.pem).",
            valueName: "file"))
    public var ca: String?

    @Flag(name: .long, help: "Plain TCP without TLS, for a cloud started with --insecure (debugging only).")
    public var insecure = false

    public init() {}

    /// The client's TLS (nil with --insecure, after the warning).
    public func clientTLS() throws -> ClusterTLS? {
        if insecure { printWarning(TLSFiles.insecureWarning) }
        return try TLSFiles.clientTLS(authority: ca, insecure: insecure)
    }
}

/// Writes a line to standard output at once (a parent reading a pipe sees it).
public func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// Writes a warning to standard error: a line of text, or under `--json` or `--pretty` one line of
/// JSON, `{"warning": TEXT}` (so that standard error holds only JSON then).
public func printWarning(_ text: String) {
    let arguments = CommandLine.arguments
    let line =
        arguments.contains("--json") || arguments.contains("--pretty")
        ? JSONValue.object(["warning": .string(text.hasPrefix("WARNING: ") ? String(text.dropFirst(9)) : text)])
            .jsonText
        : text
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
