import DistriCore
import DistriIdentity
import Testing

@Suite("Peer identity: keys, signatures, records")
struct IdentityTests {
    @Test func signAndVerify() throws {
        let keys = try SigningKeyPair.generate()
        let message = Array("hello peers".utf8)
        let signature = try keys.sign(message)
        #expect(signature.count == 64)
        #expect(keys.publicKey.isValidSignature(signature, for: message))
        // Ed25519 is deterministic.
        #expect(try keys.sign(message) == signature)
        var tampered = signature
        tampered[10] ^= 1
        #expect(!keys.publicKey.isValidSignature(tampered, for: message))
        #expect(!keys.publicKey.isValidSignature(signature, for: message + [0]))
        #expect(!(try SigningKeyPair.generate()).publicKey.isValidSignature(signature, for: message))
        #expect(!keys.publicKey.isValidSignature(Array(signature.prefix(63)), for: message))
        // The stored private key gives back the same pair.
        let again = try SigningKeyPair(privateKey: keys.privateKey)
        #expect(again.publicKey == keys.publicKey)
    }

    @Test func agreementIsSymmetric() throws {
        let alice = try AgreementKeyPair.generate()
        let bob = try AgreementKeyPair.generate()
        let one = try alice.sharedSecret(with: bob.publicKey)
        #expect(one.count == 32)
        #expect(one == (try bob.sharedSecret(with: alice.publicKey)))
        #expect(try AgreementKeyPair(privateKey: alice.privateKey).publicKey == alice.publicKey)
        #expect(throws: IdentityError.self) { try alice.sharedSecret(with: [UInt8](repeating: 0, count: 32)) }
    }

    @Test func badKeysAreRefused() {
        #expect(throws: IdentityError.self) { try SigningPublicKey(raw: [1, 2, 3]) }
        #expect(throws: IdentityError.self) { try SigningPublicKey(hex: "zz") }
        #expect(throws: IdentityError.self) { try SigningKeyPair(privateKey: []) }
    }

    @Test func recordRoundTripAndTamper() throws {
        let keys = try SigningKeyPair.generate()
        let agreement = try AgreementKeyPair.generate()
        let record = try PeerRecord.signed(
            name: "alice", addresses: ["127.0.0.1:4000"], signing: keys, agreementKey: agreement.publicKey,
            now: 1_700_000_000_000)
        try record.verify()
        let text = JSONValue.object(record.document).jsonText
        let parsed = try PeerRecord(document: try #require(try JSONParser.parse(text).objectValue))
        #expect(parsed == record)
        try parsed.verify()
        var moved = record
        moved.addresses = ["10.0.0.1:4000"]
        #expect(throws: IdentityError.self) { try moved.verify() }
        var renamed = record
        renamed.name = "mallory"
        #expect(throws: IdentityError.self) { try renamed.verify() }
        // Length prefixes: moving bytes between fields changes the signed bytes.
        let a = PeerRecord(
            name: "ab", addresses: ["c"], signingKey: keys.publicKey, agreementKey: agreement.publicKey, lastSeen: 1,
            sequence: 1)
        let b = PeerRecord(
            name: "a", addresses: ["bc"], signingKey: keys.publicKey, agreementKey: agreement.publicKey, lastSeen: 1,
            sequence: 1)
        #expect(a.signedBytes != b.signedBytes)
        #expect(throws: IdentityError.self) {
            try PeerRecord.signed(
                name: "../etc", addresses: [], signing: keys, agreementKey: agreement.publicKey, now: 1)
        }
    }

    @Test func catalogEntrySignedByOwnerOnly() throws {
        let owner = try SigningKeyPair.generate()
        let other = try SigningKeyPair.generate()
        let entry = try CatalogEntry(owner: "alice", name: "cat", bytes: 10, width: 2, height: 3, sequence: 5)
            .signed(by: owner)
        try entry.verify(signedBy: owner.publicKey)
        #expect(throws: IdentityError.self) { try entry.verify(signedBy: other.publicKey) }
        let parsed = try CatalogEntry(document: entry.document)
        #expect(parsed == entry)
        #expect(entry.document["key"] == nil)
    }
}
