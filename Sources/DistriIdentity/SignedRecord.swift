import DistriCore

/// A record a peer signs with its Ed25519 key: canonical bytes, a signature over them, and a check of
/// its fields' shapes. Signing and verifying are the same for every kind of record.
public protocol SignedRecord: Sendable {
    /// The canonical bytes the signature covers.
    var signedBytes: [UInt8] { get }
    /// Ed25519 signature of ``signedBytes`` (64 bytes; empty until signed).
    var signature: [UInt8] { get set }
    /// Checks the fields' shapes (not the signature).
    func validate() throws(IdentityError)
    /// What a failed signature check says (which record, whose key).
    var badSignatureMessage: String { get }
}

extension SignedRecord {
    /// This record signed by `keys`.
    public func signed(by keys: SigningKeyPair) throws(IdentityError) -> Self {
        try validate()
        var record = self
        record.signature = try keys.sign(signedBytes)
        return record
    }

    /// Checks the shapes and that `key` signed the record.
    public func verify(signedBy key: SigningPublicKey) throws(IdentityError) {
        try validate()
        guard key.isValidSignature(signature, for: signedBytes) else { throw .badSignature(badSignatureMessage) }
    }
}

/// Throws unless `sequence` is a whole number from 1 to 2^53 (exact in a JSON number).
func validateSequence(_ sequence: UInt64) throws(IdentityError) {
    guard sequence > 0, sequence <= JSONValue.maxExactInteger else {
        throw .malformed("the sequence must be a whole number from 1 to 2^53")
    }
}
