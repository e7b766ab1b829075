/// ``SealedStream/open(_:fileKey:)`` a piece at a time: sealed bytes arrive in pieces of any size,
/// and the plaintext of each 64 KiB chunk leaves as soon as its tag checks, so at most one chunk is
/// held. The same checks, in the same order: magic and version, the header MAC (`wrongKey` before any
/// chunk), every chunk's tag (`tampered(chunk:)`), and, at ``finish()``, that nothing is missing
/// (`truncatedPayload`).
public struct SealedStreamReader {
    private let fileKey: [UInt8]
    private var pending: [UInt8] = []
    private var cipher: AESGCM?
    /// The plaintext length the header declares, once the header is read.
    public private(set) var length: Int?
    private var chunkIndex = 0
    private var opened = 0

    /// A reader opening a stream sealed with `fileKey`; throws when the key has the wrong size.
    public init(fileKey: [UInt8]) throws {
        guard fileKey.count == AESGCM.keySize else { throw ImagingError.invalidKey("the file key must be 32 bytes") }
        self.fileKey = fileKey
    }

    /// Takes the next sealed bytes; returns the plaintext of the chunks they complete.
    public mutating func append(_ sealed: some Collection<UInt8>) throws -> [UInt8] {
        pending += sealed
        var out: [UInt8] = []
        if cipher == nil {
            guard pending.count >= SealedStream.headerSize else { return [] }
            try readHeader()
        }
        guard let length else { return out }
        let chunks = SealedStream.chunkCount(plaintextCount: length)
        var start = 0
        // Bounded: each pass opens one whole chunk.
        while chunkIndex < chunks {
            let count = min(SealedStream.chunkSize, length - chunkIndex * SealedStream.chunkSize)
            guard pending.count - start >= count + AESGCM.tagSize else { break }
            try open(from: start, count: count, last: chunkIndex == chunks - 1, into: &out)
            start += count + AESGCM.tagSize
        }
        pending.removeFirst(start)
        if chunkIndex == chunks, !pending.isEmpty {
            throw ImagingError.malformedPayload("data after the last chunk")
        }
        return out
    }

    /// Checks that every chunk arrived.
    public func finish() throws {
        guard let length, chunkIndex == SealedStream.chunkCount(plaintextCount: length) else {
            throw ImagingError.truncatedPayload
        }
    }

    private mutating func readHeader() throws {
        let (length, cipher) = try SealedStream.readHeader(pending.prefix(SealedStream.headerSize), fileKey: fileKey)
        self.length = length
        self.cipher = cipher
        pending.removeFirst(SealedStream.headerSize)
    }

    private mutating func open(from start: Int, count: Int, last: Bool, into out: inout [UInt8]) throws {
        guard let cipher else { return }
        var nonce = [UInt8](repeating: 0, count: AESGCM.nonceSize)
        SealedStream.setChunkNonce(&nonce, index: chunkIndex, last: last)
        let at = out.count
        out.append(contentsOf: repeatElement(0, count: count))
        let authentic = try pending.withUnsafeBytes { input in
            try out.withUnsafeMutableBytes { output in
                try nonce.withUnsafeBytes { nonceBytes in
                    try cipher.open(
                        nonce: nonceBytes, input: UnsafeRawBufferPointer(rebasing: input[start..<start + count]),
                        tag: UnsafeRawBufferPointer(rebasing: input[start + count..<start + count + AESGCM.tagSize]),
                        output: UnsafeMutableRawBufferPointer(rebasing: output[at..<at + count]))
                }
            }
        }
        guard authentic else { throw ImagingError.tampered(chunk: chunkIndex) }
        chunkIndex += 1
        opened += count
    }
}
