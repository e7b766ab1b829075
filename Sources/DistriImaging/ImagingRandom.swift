import COpenSSL

/// A source of random bytes for keys and nonces. Production code uses `SystemImagingRandom`
/// (OpenSSL's `RAND_bytes`); tests inject `SeededImagingRandom` so every run replays exactly.
public protocol ImagingRandom {
    /// Fills the whole buffer with random bytes.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) throws
}

extension ImagingRandom {
    /// `count` random bytes.
    public mutating func bytes(_ count: Int) throws -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        try result.withUnsafeMutableBytes { (buffer) throws in try fill(buffer) }
        return result
    }
}

/// Cryptographically secure random bytes from OpenSSL's `RAND_bytes`.
public struct SystemImagingRandom: ImagingRandom, Sendable {
    /// The system's generator.
    public init() {}

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        guard RAND_bytes(base.assumingMemoryBound(to: UInt8.self), Int32(buffer.count)) == 1 else {
            throw ImagingError.cryptoFailure("RAND_bytes failed")
        }
    }
}

/// Deterministic bytes from a seed (SplitMix64). For tests and benchmarks only: NOT secure.
public struct SeededImagingRandom: ImagingRandom, Sendable {
    private var generator: ImagingPRNG

    /// A generator that starts from `seed`.
    public init(seed: UInt64) {
        generator = ImagingPRNG(seed: seed)
    }

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) throws {
        var index = 0
        while index < buffer.count {
            var word = generator.next()
            let end = min(index + 8, buffer.count)
            while index < end {
                buffer[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
    }
}

/// SplitMix64: a tiny, fast, seedable generator (covers, tests). Not cryptographic.
struct ImagingPRNG: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
