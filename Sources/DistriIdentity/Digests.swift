import Crypto

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// SHA-256 digests of bytes and files, through swift-crypto.
public enum Digests {
    /// The SHA-256 digest (32 bytes) of `data`.
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: data))
    }

    /// The SHA-256 digest of the file at `path`, read 1 MiB at a time (nil when it cannot be read).
    public static func sha256(fileAt path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        // Bounded by the file's length: each pass reads at least one byte or ends.
        while true {
            let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
        guard ferror(file) == 0 else { return nil }
        return Array(hasher.finalize())
    }
}

/// A SHA-256 digest computed as bytes arrive, in order (a delivery's chunks as they are written), so
/// that a whole file is checked without being read back.
public struct StreamingSHA256: Sendable {
    private var hasher = SHA256()

    /// A digest of no bytes yet.
    public init() {}

    /// Adds `bytes`, which follow every byte added before.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
    }

    /// The digest (32 bytes) of every byte added so far; more may be added afterwards.
    public func finalize() -> [UInt8] {
        Array(hasher.finalize())
    }
}
