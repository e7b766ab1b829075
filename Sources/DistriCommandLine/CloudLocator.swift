import Distri
import Foundation

/// Where a command found the cloud, so that a failure can say so.
public struct CloudLocation: Sendable, Equatable {
    /// The addresses given (a host name among them resolves to all of its addresses in the client).
    public var addresses: [NodeAddress]
    /// Where they came from: `--cloud`, `$DISTRI_CLOUD`, or `the cloud file PATH`.
    public var source: String

    public init(addresses: [NodeAddress], source: String) {
        self.addresses = addresses
        self.source = source
    }

    /// `127.0.0.1:7000,127.0.0.1:7001 (from $DISTRI_CLOUD)`.
    public var description: String {
        "\(addresses.map(\.description).joined(separator: ",")) (from \(source))"
    }

    /// The error to show for `error`: when no node could be reached, one naming the addresses and
    /// where they came from; any other error as it is.
    public func explain(_ error: any Error) -> any Error {
        guard let clientError = error as? ClientError,
            [ClientError.Kind.connectFailed, .noReachableNode, .connectionLost, .unresponsive].contains(
                clientError.kind)
        else { return error }
        return CloudLocatorError("no node reachable at \(description): \(clientError)")
    }
}

/// A cloud that could not be found or reached, in words a user can act on.
public struct CloudLocatorError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Where the cloud is: `--cloud`, else `$DISTRI_CLOUD`, else the file `$DISTRI_HOME/cloud` (default
/// `~/.distri/cloud`, written by `distri-node local`), each a comma-separated `host:port` list. One
/// reachable address is enough: the client learns the rest of the cloud from it. Shared by
/// `distri-node` and `distri-peer`.
public enum CloudLocator {
    /// The cloud file's path.
    public static func cloudFile(environment: [String: String]) -> String {
        TLSFiles.localCloudFile(environment: environment)
    }

    /// The cloud's addresses and where they came from.
    public static func locate(
        flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> CloudLocation {
        func parse(_ text: String, from source: String) throws -> CloudLocation {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let addresses = NodeAddress.parseList(trimmed), !addresses.isEmpty else {
                throw CloudLocatorError("\(source) must be host:port,... (got '\(trimmed.prefix(200))')")
            }
            return CloudLocation(addresses: addresses, source: source)
        }
        if let flag { return try parse(flag, from: "--cloud") }
        if let env = environment["DISTRI_CLOUD"], !env.isEmpty { return try parse(env, from: "$DISTRI_CLOUD") }
        let file = cloudFile(environment: environment)
        var info = stat()
        guard lstat(file, &info) == 0 else {
            throw CloudLocatorError(
                "no cloud given: use --cloud HOST:PORT,..., set DISTRI_CLOUD, or start `distri-node local` (it writes \(file))"
            )
        }
        guard info.st_mode & S_IFMT == S_IFREG, let handle = FileHandle(forReadingAtPath: file) else {
            throw CloudLocatorError("cannot read the cloud file \(file)")
        }
        defer { try? handle.close() }
        let bytes = (try? handle.read(upToCount: 64 << 10)) ?? nil
        return try parse(String(decoding: bytes ?? Data(), as: UTF8.self), from: "the cloud file \(file)")
    }

    /// The cloud's addresses (``locate(flag:environment:)`` without the source).
    public static func resolve(
        flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> [NodeAddress] {
        try locate(flag: flag, environment: environment).addresses
    }
}
