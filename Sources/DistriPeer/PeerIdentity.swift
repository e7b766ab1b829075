import DistriCore
import DistriIdentity
import Foundation

/// A peer's name and key pairs, as kept in its ``PeerHome``.
public struct PeerIdentity: Sendable {
    /// The peer's name.
    public let name: String
    /// Its Ed25519 key pair, which signs its records.
    public let signing: SigningKeyPair
    /// Its X25519 key pair, to which image keys are sealed.
    public let agreement: AgreementKeyPair
    /// The home the identity is kept in.
    public let home: PeerHome

    /// Makes new key pairs for `name` and writes them to `home` (0700 directory, 0600 files). Refuses
    /// to replace an existing identity unless `force`.
    public static func create(name: String, home: PeerHome, force: Bool = false) throws -> PeerIdentity {
        try PeerName.validate(name, what: "peer name")
        if !force, SecureFiles.exists(home.recordFile) || SecureFiles.exists(home.signingKeyFile) {
            throw PeerError(
                "a peer identity already exists in \(home.path); use --force to replace it (a name the cloud has registered stays bound to the old signing key)"
            )
        }
        let identity = PeerIdentity(
            name: name, signing: try SigningKeyPair.generate(), agreement: try AgreementKeyPair.generate(), home: home)
        try SecureFiles.makeDirectory(home.path)
        try SecureFiles.makeDirectory(home.imagesDirectory)
        try SecureFiles.makeDirectory(home.keysDirectory)
        try SecureFiles.write(Array((Hex.encode(identity.signing.privateKey) + "\n").utf8), to: home.signingKeyFile)
        try SecureFiles.write(
            Array((Hex.encode(identity.agreement.privateKey) + "\n").utf8), to: home.agreementKeyFile)
        // Written last: its presence says the identity is complete.
        try SecureFiles.write(Array((identity.publicDescription.jsonText + "\n").utf8), to: home.recordFile)
        return identity
    }

    /// Reads the identity in `home`; refuses key files others may read.
    public static func load(from home: PeerHome) throws -> PeerIdentity {
        guard SecureFiles.exists(home.recordFile) else {
            throw PeerError("no peer identity in \(home.path); run `distri-peer init --name NAME` first")
        }
        guard let record = (try? JSONParser.parse(try SecureFiles.read(home.recordFile)))?.objectValue,
            case .string(let name)? = record["name"]
        else { throw PeerError("\(home.recordFile) is not a peer description") }
        func key(_ path: String) throws -> [UInt8] {
            let text = String(decoding: try SecureFiles.read(path, private: true), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard let raw = Hex.decode(text), raw.count == 32 else {
                throw PeerError("\(path) is not a 32-byte hex key")
            }
            return raw
        }
        let identity = PeerIdentity(
            name: name, signing: try SigningKeyPair(privateKey: try key(home.signingKeyFile)),
            agreement: try AgreementKeyPair(privateKey: try key(home.agreementKeyFile)), home: home)
        guard record["signingKey"] == .string(identity.signing.publicKey.hex) else {
            throw PeerError("\(home.signingKeyFile) does not match the public key in \(home.recordFile)")
        }
        return identity
    }

    /// Name and public keys (what `init --json` prints and peer.json holds).
    public var publicDescription: JSONValue {
        .object([
            "name": .string(name), "home": .string(home.path), "signingKey": .string(signing.publicKey.hex),
            "agreementKey": .string(Hex.encode(agreement.publicKey)),
        ])
    }

    /// This peer's record for `addresses`, signed now, its sequence above `previous`.
    public func signedRecord(addresses: [String], now: UInt64, after previous: UInt64 = 0, reachable: Bool? = nil)
        throws -> PeerRecord
    {
        try PeerRecord.signed(
            name: name, addresses: addresses, signing: signing, agreementKey: agreement.publicKey, now: now,
            sequence: max(now, previous + 1), reachable: reachable)
    }
}

/// Milliseconds since 1970.
public func wallClockMillis() -> UInt64 {
    UInt64(max(0, Date().timeIntervalSince1970 * 1000))
}
