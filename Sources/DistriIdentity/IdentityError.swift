/// Why a key, a signature or a signed record was not accepted.
public enum IdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The crypto library (swift-crypto) failed to do what was asked.
    case cryptoFailure(String)
    /// A key was not 32 bytes, not hex, or not a valid key.
    case invalidKey(String)
    /// A record or entry was not well formed (missing field, wrong type, out of range).
    case malformed(String)
    /// The signature does not verify under the key it should.
    case badSignature(String)

    public var description: String {
        switch self {
        case .cryptoFailure(let why): "crypto failure: \(why)"
        case .invalidKey(let why): "invalid key: \(why)"
        case .malformed(let why): "malformed: \(why)"
        case .badSignature(let why): "bad signature: \(why)"
        }
    }
}
