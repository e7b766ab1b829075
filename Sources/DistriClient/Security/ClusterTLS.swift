import Foundation
import NIOCore
import NIOSSL

/// TLS for a cluster: the authority every side trusts, and this side's own certificate and key when
/// it has one (every node does; a client may). Holds the TLS contexts, made once and shared by every
/// connection.
///
/// - Nodes serve TLS 1.3 with their certificate, and accept a client certificate when one is shown,
///   checking it against the authority; only a `node` certificate counts as a node.
/// - Every side checks the server's chain against the authority (not the host name: nodes are
///   reached by address, and every node's certificate is the authority's word that it is a node).
public struct ClusterTLS: Sendable {
    /// This side's name and role from its certificate (nil for a client without one).
    public let identity: (name: String, role: ClusterCertificates.Role)?
    package let serverContext: NIOSSLContext?
    package let clientContext: NIOSSLContext

    /// From PEM text: the authority's certificate, and this side's certificate and key (both or neither).
    public init(authorityPEM: String, certificatePEM: String? = nil, keyPEM: String? = nil) throws {
        let authority = try NIOSSLCertificate(bytes: Array(authorityPEM.utf8), format: .pem)
        var chain: [NIOSSLCertificateSource] = []
        var key: NIOSSLPrivateKeySource?
        switch (certificatePEM, keyPEM) {
        case (let certificate?, let privateKey?):
            chain = [.certificate(try NIOSSLCertificate(bytes: Array(certificate.utf8), format: .pem))]
            key = .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKey.utf8), format: .pem))
            guard let identity = ClusterCertificates.identity(ofPEM: certificate) else {
                throw CertificateError("the certificate names no Distri role (OU distri-node or distri-client)")
            }
            self.identity = identity
        case (nil, nil):
            self.identity = nil
        default:
            throw CertificateError("a certificate needs its key, and a key its certificate")
        }
        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv13
        client.trustRoots = .certificates([authority])
        client.certificateVerification = .noHostnameVerification
        client.certificateChain = chain
        client.privateKey = key
        self.clientContext = try NIOSSLContext(configuration: client)
        if let key {
            var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
            server.minimumTLSVersion = .tlsv13
            server.trustRoots = .certificates([authority])
            server.certificateVerification = .optionalVerification
            self.serverContext = try NIOSSLContext(configuration: server)
        } else {
            self.serverContext = nil
        }
    }

    /// From files: the authority's certificate, and this side's certificate and key.
    public static func load(authority: String, certificate: String? = nil, key: String? = nil) throws -> ClusterTLS {
        func read(_ path: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CertificateError("cannot read \(path)")
            }
            return String(decoding: data, as: UTF8.self)
        }
        return try ClusterTLS(
            authorityPEM: try read(authority), certificatePEM: try certificate.map(read), keyPEM: try key.map(read))
    }

    /// A TLS handler for the client end of a connection.
    public func makeClientHandler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: clientContext, serverHostname: nil)
    }

    /// A TLS handler for the server end of a connection (nodes only).
    package func makeServerHandler() throws -> NIOSSLServerHandler {
        guard let serverContext else { throw CertificateError("serving TLS needs a certificate and its key") }
        return NIOSSLServerHandler(context: serverContext)
    }
}
