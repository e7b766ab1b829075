import DistriCore
import Testing

@testable import DistriIdentity

/// Keys, signatures, digests and sealed boxes are byte-for-byte what the OpenSSL implementation made
/// before the identity layer moved to swift-crypto: homes, records and mailboxes written by earlier
/// versions keep working. The constants were produced by that implementation from these fixed inputs.
@Suite("Crypto compatibility vectors")
struct CryptoCompatibilityTests {
    static let signingSeed = (0..<32).map { UInt8($0) }
    static let agreementSeed = (32..<64).map { UInt8($0) }
    static let otherAgreementSeed = (64..<96).map { UInt8($0) }
    static let ephemeralSeed = (96..<128).map { UInt8($0) }
    static let nonce = (128..<140).map { UInt8($0) }
    static let message = Array("distri compatibility vector".utf8)
    static let secret = (0..<49).map { UInt8($0 * 3 & 0xFF) }

    static let signingPublic = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    static let signature =
        "601a5e148e8cfb37d2a21ea218eb13ab0202c148592c803bd040939d31879a6c12fd06596e6ce771493e727d1cdcf2cd"
        + "cb29e91f7ac84780749053c62a00c606"
    static let agreementPublic = "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
    static let sharedSecret = "04c304fb1ca83cee75e206344231f33797e07d9929db670994b7c6fbeb1dc255"
    static let sealedBox =
        "01675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f808182838485868788898a8b0d6afd"
        + "6316d673d0bd1bcaf67e29f2770c747edd5606727b7790c30bf5c60cf4a8182d4763205a48524246d53045c24de6bb8a"
        + "d99a8087fe68b190e3dea8121891"
    static let digest = "2587d7c7402fb5540382cd9eecb1ede9e4409de545c1f8553ae4bcd295f4a9a1"

    @Test func signingKeysAndSignatures() throws {
        let keys = try SigningKeyPair(privateKey: Self.signingSeed)
        #expect(keys.publicKey.hex == Self.signingPublic)
        let signature = try keys.sign(Self.message)
        #expect(Hex.encode(signature) == Self.signature)
        #expect(keys.publicKey.isValidSignature(try #require(Hex.decode(Self.signature)), for: Self.message))
        #expect(!keys.publicKey.isValidSignature(signature, for: Self.message + [0]))
    }

    @Test func agreementKeysAndSharedSecrets() throws {
        let mine = try AgreementKeyPair(privateKey: Self.agreementSeed)
        let theirs = try AgreementKeyPair(privateKey: Self.otherAgreementSeed)
        #expect(Hex.encode(mine.publicKey) == Self.agreementPublic)
        #expect(Hex.encode(try mine.sharedSecret(with: theirs.publicKey)) == Self.sharedSecret)
        #expect(try theirs.sharedSecret(with: mine.publicKey) == mine.sharedSecret(with: theirs.publicKey))
    }

    @Test func sealedBoxesSealAndOpenAsBefore() throws {
        let recipient = try AgreementKeyPair(privateKey: Self.agreementSeed)
        let box = try SealedBox.seal(
            Self.secret, to: recipient.publicKey, domain: "deposit", context: Array("alice:cat:bob".utf8),
            ephemeral: try AgreementKeyPair(privateKey: Self.ephemeralSeed), nonce: Self.nonce)
        #expect(Hex.encode(box) == Self.sealedBox)
        let stored = try #require(Hex.decode(Self.sealedBox))
        #expect(
            try SealedBox.open(stored, with: recipient, domain: "deposit", context: Array("alice:cat:bob".utf8))
                == Self.secret)
    }

    @Test func digests() throws {
        #expect(Hex.encode(Digests.sha256(Self.message)) == Self.digest)
    }
}
