import Foundation

/// Where the command-line tools find TLS material.
public enum TLSFiles {
    /// `$DISTRI_HOME`, else `~/.distri`.
    public static var home: String {
        let environment = ProcessInfo.processInfo.environment
        return environment["DISTRI_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".distri")
    }

    /// Where `distri-node local` leaves its throw-away authority's certificate for clients and peers:
    /// `$DISTRI_HOME/cloud.ca.pem`, else `~/.distri/cloud.ca.pem`.
    public static var localAuthority: String { (home as NSString).appendingPathComponent("cloud.ca.pem") }

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

    /// Writes `text` to `path` with mode 0600 (0644 when `public`), creating its directory.
    public static func write(_ text: String, to path: String, public isPublic: Bool = false) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw CertificateError("cannot write \(path)")
        }
        try FileManager.default.setAttributes([.posixPermissions: isPublic ? 0o644 : 0o600], ofItemAtPath: path)
    }

    /// The loud warning every insecure start prints.
    public static let insecureWarning = """
        WARNING: --insecure: plain TCP without TLS. Anyone who can reach these ports can join the cluster, \
        call its internal services, read and change its traffic. Use it only for debugging.
        """
}
