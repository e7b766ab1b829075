/// ``SealedStream/seal(_:fileKey:random:)`` a piece at a time: the same bytes for the same plaintext,
/// nonce and key, but the plaintext arrives in pieces of any size and the sealed bytes leave as each
/// 64 KiB chunk completes, so at most one chunk is held. The plaintext's whole length is given first
/// (the header carries it, and the last chunk is flagged).
public struct SealedStreamWriter {
    /// The plaintext length the header declares.
    public let length: Int
    /// Plaintext bytes taken so far.
    public private(set) var received = 0
    private let cipher: AESGCM
    private var pending: [UInt8] = []
    private var chunkIndex = 0
    private var header: [UInt8]?

    /// A writer sealing `length` bytes with `fileKey`, its nonce drawn from `random`; throws when the key has the wrong size.
    public init(fileKey: [UInt8], length: Int, random: inout some ImagingRandom) throws {
        guard length >= 0 else { throw ImagingError.malformedPayload("negative length") }
        self.length = length
        (header, cipher) = try SealedStream.makeHeader(fileKey: fileKey, length: length, random: &random)
        pending.reserveCapacity(SealedStream.chunkSize)
    }

    /// Whether every plaintext byte was taken (and so every sealed byte given out).
    public var isComplete: Bool { received == length && header == nil && pending.isEmpty && chunkIndex > 0 }

    /// Takes the next plaintext bytes; returns the sealed bytes they complete (the header first).
    public mutating func append(_ bytes: some Collection<UInt8>) throws -> [UInt8] {
        guard bytes.count <= length - received else {
            throw ImagingError.malformedPayload("more than the \(length) bytes declared")
        }
        var out = header ?? []
        header = nil
        let chunks = SealedStream.chunkCount(plaintextCount: length)
        var rest = bytes[...]
        // Bounded: each pass moves at least one byte into the pending chunk.
        while !rest.isEmpty {
            let take = rest.prefix(SealedStream.chunkSize - pending.count)
            pending.append(contentsOf: take)
            rest = rest.dropFirst(take.count)
            if pending.count == SealedStream.chunkSize, chunkIndex < chunks - 1 {
                try sealPending(last: false, into: &out)
            }
        }
        received += bytes.count
        if received == length, chunkIndex == chunks - 1 { try sealPending(last: true, into: &out) }
        return out
    }

    private mutating func sealPending(last: Bool, into out: inout [UInt8]) throws {
        var nonce = [UInt8](repeating: 0, count: AESGCM.nonceSize)
        SealedStream.setChunkNonce(&nonce, index: chunkIndex, last: last)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: pending.count + AESGCM.tagSize))
        let count = pending.count
        try pending.withUnsafeBytes { input in
            try out.withUnsafeMutableBytes { output in
                try nonce.withUnsafeBytes { nonceBytes in
                    try cipher.seal(
                        nonce: nonceBytes, input: input,
                        output: UnsafeMutableRawBufferPointer(rebasing: output[start..<start + count]),
                        tag: UnsafeMutableRawBufferPointer(
                            rebasing: output[start + count..<start + count + AESGCM.tagSize]))
                }
            }
        }
        pending.removeAll(keepingCapacity: true)
        chunkIndex += 1
    }
}
