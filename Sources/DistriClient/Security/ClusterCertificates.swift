import Crypto
import Foundation
import SwiftASN1
import X509

/// The cluster's certificate authority and the certificates it issues: ECDSA P-256 keys, PEM text.
///
/// A certificate's subject names its holder (common name) and its role (organizational unit
/// `distri-node` or `distri-client`). Only a certificate of role `node` issued by the cluster's
/// authority lets a connection join, gossip, replicate or call any other internal service.
public enum ClusterCertificates {
    /// What a certificate entitles its holder to.
    public enum Role: String, Sendable {
        /// A CloudNode: internal services, membership, replication.
        case node = "distri-node"
        /// A client or a peer: the public services only.
        case client = "distri-client"
    }

    /// A certificate and its private key, as PEM text.
    public struct Issued: Sendable {
        /// The certificate, PEM.
        public var certificatePEM: String
        /// Its private key, PEM.
        public var keyPEM: String

        /// A certificate and key pair.
        public init(certificatePEM: String, keyPEM: String) {
            self.certificatePEM = certificatePEM
            self.keyPEM = keyPEM
        }
    }

    /// Makes a self-signed authority valid for `days` from `now`.
    public static func makeAuthority(name: String = "Distri cluster CA", days: Int = 3650, now: Date = Date()) throws
        -> Issued
    {
        let key = P256.Signing.PrivateKey()
        let privateKey = Certificate.PrivateKey(key)
        let subject = try DistinguishedName {
            CommonName(name)
            OrganizationName("Distri")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: privateKey.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: privateKey.publicKey)
            },
            issuerPrivateKey: privateKey)
        return Issued(
            certificatePEM: try certificate.serializeAsPEM().pemString,
            keyPEM: try privateKey.serializeAsPEM().pemString)
    }

    /// Issues a certificate for `name` in `role`, signed by `authority`, valid for `days` from `now`.
    /// `hosts` (IP addresses or DNS names) go into the subject alternative names.
    public static func issue(
        name: String, role: Role, hosts: [String] = ["127.0.0.1", "localhost"], authority: Issued, days: Int = 825,
        now: Date = Date()
    ) throws -> Issued {
        guard !name.isEmpty, name.utf8.count <= 64, !name.contains(",") else {
            throw CertificateError("a certificate name has 1 to 64 bytes and no comma")
        }
        let authorityCertificate = try Certificate(pemEncoded: authority.certificatePEM)
        let authorityKey = try Certificate.PrivateKey(pemEncoded: authority.keyPEM)
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let subject = try DistinguishedName {
            CommonName(name)
            OrganizationalUnitName(role.rawValue)
            OrganizationName("Distri")
        }
        let names = hosts.map { host -> GeneralName in
            if let ip = ipv4Bytes(host) { return .ipAddress(ASN1OctetString(contentBytes: ip[...])) }
            return .dnsName(host)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
            issuer: authorityCertificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(role == .node ? [.serverAuth, .clientAuth] : [.clientAuth])
                SubjectAlternativeNames(names)
                AuthorityKeyIdentifier(
                    keyIdentifier: try authorityCertificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: authorityKey)
        return Issued(
            certificatePEM: try certificate.serializeAsPEM().pemString, keyPEM: try key.serializeAsPEM().pemString)
    }

    /// The holder's name and role in a DER certificate; nil when it names no role this cluster issues.
    public static func identity(ofDER der: [UInt8]) -> (name: String, role: Role)? {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        var name: String?
        var role: Role?
        for rdn in certificate.subject {
            for attribute in rdn {
                switch attribute.type {
                case .RDNAttributeType.commonName: name = String(describing: attribute.value)
                case .RDNAttributeType.organizationalUnitName:
                    role = Role(rawValue: String(describing: attribute.value))
                default: break
                }
            }
        }
        guard let name, let role else { return nil }
        return (name, role)
    }

    /// The holder's name and role in a PEM certificate.
    public static func identity(ofPEM pem: String) -> (name: String, role: Role)? {
        guard let document = try? PEMDocument(pemString: pem) else { return nil }
        return identity(ofDER: document.derBytes)
    }

    private static func ipv4Bytes(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}

/// A certificate could not be made, read or used.
public struct CertificateError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// An error that says `description`.
    public init(_ description: String) { self.description = description }
}
