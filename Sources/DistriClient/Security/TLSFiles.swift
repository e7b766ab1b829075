import DistriStorage
import Foundation

/// Where the command-line tools find TLS material.
public enum TLSFiles {
    /// `$DISTRI_HOME`, else `~/.distri`, for this process's environment.
    public static var home: String { home(environment: ProcessInfo.processInfo.environment) }

    /// `$DISTRI_HOME` (with `~` expanded), else `$HOME/.distri`: where every tool keeps its files.
    public static func home(environment: [String: String]) -> String {
        if let home = environment["DISTRI_HOME"], !home.isEmpty { return (home as NSString).expandingTildeInPath }
        let user = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (user as NSString).appendingPathComponent(".distri")
    }

    /// Where `distri-node local` lists its nodes for peers by default: `$DISTRI_HOME/cloud`.
    public static var localCloudFile: String { localCloudFile(environment: ProcessInfo.processInfo.environment) }

    /// ``localCloudFile`` for `environment`.
    public static func localCloudFile(environment: [String: String]) -> String {
        (home(environment: environment) as NSString).appendingPathComponent("cloud")
    }

    /// The throw-away authority's certificate that `distri-node local` leaves beside its cloud file.
    public static func authorityFile(besideCloudFile cloudFile: String) -> String { cloudFile + ".ca.pem" }

    /// Where clients and peers look for the local cloud's authority: beside ``localCloudFile``.
    public static var localAuthority: String { authorityFile(besideCloudFile: localCloudFile) }

    /// Where `distri-node certs` keeps a cluster's files by default: `$DISTRI_HOME/certs`.
    public static var certificatesDirectory: String { (home as NSString).appendingPathComponent("certs") }

    /// Client TLS for talking to a cloud: the authority from `flag`, else `$DISTRI_CA`, else the local
    /// cloud's (``localAuthority``) when that file exists; nil with `insecure` (plain TCP). Throws
    /// when no authority is found and `insecure` is not set.
    public static func clientTLS(authority flag: String?, insecure: Bool) throws -> ClusterTLS? {
        if insecure { return nil }
        let environment = ProcessInfo.processInfo.environment["DISTRI_CA"].flatMap { $0.isEmpty ? nil : $0 }
        let fallback = FileManager.default.fileExists(atPath: localAuthority) ? localAuthority : nil
        guard let path = flag ?? environment ?? fallback else {
            throw CertificateError(
                "no cluster CA certificate: give --ca FILE or $DISTRI_CA (a local cloud leaves \(localAuthority)), or --insecure for a cloud without TLS"
            )
        }
        return try ClusterTLS.load(authority: path)
    }

    /// Writes `text` to `path` whole (`WholeFile`) with mode 0600 (0644 when `public`), creating
    /// its directory (0700 for a private file).
    public static func write(_ text: String, to path: String, public isPublic: Bool = false) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true,
            attributes: isPublic ? nil : [.posixPermissions: 0o700])
        try WholeFile.write(Array(text.utf8), to: path, mode: isPublic ? 0o644 : 0o600)
    }

    /// The loud warning every insecure start prints.
    public static let insecureWarning = """
        WARNING: --insecure: plain TCP without TLS. Anyone who can reach these ports can join the cluster, \
        call its internal services, read and change its traffic. Use it only for debugging.
        """
}
