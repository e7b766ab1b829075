import DistriCore
import DistriIdentity
import Testing

@Suite("Sealed boxes and signed grants")
struct SealedBoxTests {
    @Test func sealsToOneKeyAndContext() throws {
        let recipient = try AgreementKeyPair.generate()
        let other = try AgreementKeyPair.generate()
        let secret = Array(0..<49).map { UInt8($0) }
        let box = try SealedBox.seal(secret, to: recipient.publicKey, domain: "deposit", context: Array("a:b:c".utf8))
        #expect(box.count == secret.count + 61)
        #expect(try SealedBox.open(box, with: recipient, domain: "deposit", context: Array("a:b:c".utf8)) == secret)
        // Another key, another context, another domain, or any altered byte: refused.
        #expect(throws: IdentityError.self) {
            try SealedBox.open(box, with: other, domain: "deposit", context: Array("a:b:c".utf8))
        }
        #expect(throws: IdentityError.self) {
            try SealedBox.open(box, with: recipient, domain: "deposit", context: Array("a:b:d".utf8))
        }
        #expect(throws: IdentityError.self) {
            try SealedBox.open(box, with: recipient, domain: "release", context: Array("a:b:c".utf8))
        }
        for index in [0, 1, 40, box.count - 1] {
            var altered = box
            altered[index] ^= 1
            #expect(throws: IdentityError.self) {
                try SealedBox.open(altered, with: recipient, domain: "deposit", context: Array("a:b:c".utf8))
            }
        }
        #expect(throws: IdentityError.self) { try SealedBox.open([], with: recipient, domain: "x", context: []) }
        // Two seals of the same secret differ (fresh ephemeral key and nonce).
        #expect(try SealedBox.seal(secret, to: recipient.publicKey, domain: "deposit", context: []) != box)
    }

    @Test func grantsAndRequestsSignEveryField() throws {
        let alice = try SigningKeyPair.generate()
        let grant = try ViewGrant(
            owner: "alice", image: "cat", recipient: "bob", views: 3, digest: Digests.sha256([1, 2, 3]),
            sealedKey: [1, 2, 3], sequence: 7
        ).signed(by: alice)
        try grant.verify(signedBy: alice.publicKey)
        #expect(grant.id == "alice:cat:bob")
        #expect(try ViewGrant(document: grant.document) == grant)
        for change in [
            { (g: inout ViewGrant) in g.views = 4 }, { $0.recipient = "carol" }, { $0.sequence = 8 },
            { $0.sealedKey = [9] }, { $0.digest = Digests.sha256([4]) },
        ] {
            var altered = grant
            change(&altered)
            #expect(throws: IdentityError.self) { try altered.verify(signedBy: alice.publicKey) }
        }
        #expect(throws: IdentityError.self) { try grant.verify(signedBy: try SigningKeyPair.generate().publicKey) }
        // Shapes: views need a key, owners do not grant themselves, digests are 32 bytes.
        var keyless = grant
        keyless.sealedKey = []
        #expect(throws: IdentityError.self) { try keyless.validate() }
        keyless.views = 0
        try keyless.validate()
        var selfGrant = grant
        selfGrant.recipient = "alice"
        #expect(throws: IdentityError.self) { try selfGrant.validate() }

        let bob = try SigningKeyPair.generate()
        let request = try ViewRequest(owner: "alice", image: "cat", recipient: "bob", sequence: 5).signed(by: bob)
        try request.verify(signedBy: bob.publicKey)
        #expect(try ViewRequest(document: request.document) == request)
        var replayedElsewhere = request
        replayedElsewhere.image = "dog"
        #expect(throws: IdentityError.self) { try replayedElsewhere.verify(signedBy: bob.publicKey) }
        #expect(Digests.sha256([]) == Hex.decode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
    }
}
