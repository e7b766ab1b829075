import Distri
import Foundation

/// Where the cloud is: `--cloud`, else `$DISTRI_CLOUD`, else the file `$DISTRI_HOME/cloud` (default
/// `~/.distri/cloud`, written by `distri-node local`), each a comma-separated `host:port` list.
public enum CloudLocator {
    public static func cloudFile(environment: [String: String]) -> String {
        TLSFiles.localCloudFile(environment: environment)
    }

    public static func resolve(
        flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> [NodeAddress] {
        func parse(_ text: String, from source: String) throws -> [NodeAddress] {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let addresses = NodeAddress.parseList(trimmed), !addresses.isEmpty else {
                throw PeerError("\(source) must be host:port,... (got '\(trimmed.prefix(200))')")
            }
            return addresses
        }
        if let flag { return try parse(flag, from: "--cloud") }
        if let env = environment["DISTRI_CLOUD"], !env.isEmpty { return try parse(env, from: "$DISTRI_CLOUD") }
        let file = cloudFile(environment: environment)
        guard SecureFiles.exists(file) else {
            throw PeerError(
                "no cloud given: use --cloud HOST:PORT,..., set DISTRI_CLOUD, or start `distri-node local` (it writes \(file))"
            )
        }
        let bytes = try SecureFiles.read(file)
        return try parse(String(decoding: bytes.prefix(64 << 10), as: UTF8.self), from: file)
    }
}
