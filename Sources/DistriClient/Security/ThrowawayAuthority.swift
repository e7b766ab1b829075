import Foundation

/// A cluster authority made for one run, held in memory: node certificates issued on demand, and
/// client TLS that trusts it. `distri-node local`, the demo and the tests use one, so a local cloud
/// speaks TLS without any set-up; a real cluster keeps its authority in files (`distri-node certs`).
public struct ThrowawayAuthority: Sendable {
    /// The authority's certificate and key.
    public let authority: ClusterCertificates.Issued
    /// TLS for a client without a certificate of its own, trusting this authority.
    public let clientTLS: ClusterTLS

    /// A new authority with a fresh key, and client TLS that trusts it.
    public init() throws {
        authority = try ClusterCertificates.makeAuthority(name: "Distri throw-away CA")
        clientTLS = try ClusterTLS(authorityPEM: authority.certificatePEM)
    }

    /// TLS for a node named `name`, with a fresh key and certificate.
    public func nodeTLS(name: String) throws -> ClusterTLS {
        try tls(name: name, role: .node)
    }

    /// TLS for a holder of a certificate named `name` in `role`.
    public func tls(name: String, role: ClusterCertificates.Role) throws -> ClusterTLS {
        let issued = try ClusterCertificates.issue(name: name, role: role, authority: authority)
        return try ClusterTLS(
            authorityPEM: authority.certificatePEM, certificatePEM: issued.certificatePEM, keyPEM: issued.keyPEM)
    }
}
