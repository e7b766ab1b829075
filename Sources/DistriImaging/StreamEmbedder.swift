/// Hides a sealed payload in a generated cover written row by row: the payload arrives in pieces,
/// each cover row is generated (``CoverRows``), takes its share of the payload in raster order and
/// is encoded (``PNGRowWriter``) as soon as its bytes are there, and the PNG's bytes leave as they are
/// produced. It holds one row, the payload bytes of less than one row and libpng's state, whatever the
/// payload's size. The layout is ``PayloadEmbedding``'s sequential version (2): the same header, then
/// the payload from the unit after it, at `bitsPerChannel`.
public final class StreamEmbedder {
    /// The cover's width in pixels.
    public let width: Int
    /// The cover's height in pixels.
    public let height: Int
    /// Bits of payload per RGB channel: 2, 4 or 8.
    public let bitsPerChannel: Int
    /// Payload bytes declared.
    public let length: Int
    private var rows: CoverRows
    private let writer: PNGRowWriter
    private var row: [UInt8]
    /// Payload bytes not yet in a row: `pending[consumed...]`.
    private var pending: [UInt8] = []
    private var consumed = 0
    private var received = 0
    private var header: [UInt8]?

    /// A cover for `length` payload bytes at `bitsPerChannel` (``CoverGenerator/size(forPayloadSize:bitsPerChannel:)``).
    public init(
        length: Int, key: ImageKey, seed: UInt64, bitsPerChannel: Int = PayloadEmbedding.bitsPerChannel,
        settings: PNGEncodeSettings = .default
    ) throws {
        guard PayloadEmbedding.densities.contains(bitsPerChannel) else {
            throw ImagingError.malformedPayload(
                "\(bitsPerChannel) bits per channel: the densities are \(PayloadEmbedding.densities)")
        }
        guard length >= 0, length <= Int(UInt32.max) else {
            throw ImagingError.malformedPayload("a payload of \(length) bytes cannot be embedded (at most 4 GiB)")
        }
        let size = CoverGenerator.size(forPayloadSize: length, bitsPerChannel: bitsPerChannel)
        (width, height) = (size.width, size.height)
        self.bitsPerChannel = bitsPerChannel
        self.length = length
        rows = CoverRows(width: width, height: height, seed: seed)
        writer = try PNGRowWriter(width: width, height: height, settings: settings)
        row = [UInt8](repeating: 0, count: width * 4)
        header = try PayloadEmbedding.header(
            version: PayloadEmbedding.sequentialVersion, bits: bitsPerChannel, length: length, payloadCRC: 0, key: key)
    }

    /// Payload bytes one row carries (the first row also carries the header).
    private func capacity(ofRow y: Int) -> Int {
        let units = width / PayloadEmbedding.pixelsPerUnit - (y == 0 ? PayloadEmbedding.headerUnits : 0)
        return units * 3 * bitsPerChannel / 2
    }

    /// Takes the next payload bytes; returns the PNG bytes produced so far.
    public func append(_ payload: [UInt8]) throws -> [UInt8] {
        guard payload.count <= length - received else {
            throw ImagingError.malformedPayload("more than the \(length) payload bytes declared")
        }
        pending.removeFirst(consumed)
        consumed = 0
        pending += payload
        received += payload.count
        // Bounded: each pass writes one row.
        while rows.y < height, pending.count - consumed >= capacity(ofRow: rows.y) || received == length {
            try writeRow()
            if received == length && pending.count == consumed { break }
        }
        return writer.take()
    }

    /// Writes the rows left (after every payload byte) and ends the PNG; returns its last bytes.
    public func finish() throws -> [UInt8] {
        guard received == length else {
            throw ImagingError.malformedPayload("\(received) of the \(length) payload bytes were given")
        }
        while rows.y < height { try writeRow() }
        try writer.end()
        return writer.take()
    }

    /// Generates the next cover row, writes its share of the pending payload into it and encodes it.
    private func writeRow() throws {
        let y = rows.y
        let share = min(pending.count - consumed, capacity(ofRow: y))
        let start = consumed
        let unitBytes = 3 * bitsPerChannel / 2
        let firstUnit = y == 0 ? PayloadEmbedding.headerUnits : 0
        let bits = bitsPerChannel
        let header = y == 0 ? self.header : nil
        try row.withUnsafeMutableBytes { buffer in
            rows.next(into: buffer)
            guard let pixels = buffer.baseAddress else { return }
            PayloadEmbedding.spread.withUnsafeBufferPointer { spread in
                if let header {
                    header.withUnsafeBufferPointer { bytes in
                        for unit in 0..<PayloadEmbedding.headerUnits {
                            PayloadEmbedding.writeUnit(pixels, unit: unit, bytes, at: unit * 3, spread: spread)
                        }
                    }
                }
                pending.withUnsafeBufferPointer { all in
                    let bytes = UnsafeBufferPointer(rebasing: all[start..<start + share])
                    for index in 0..<(share + unitBytes - 1) / unitBytes {
                        if bits == 2 {
                            PayloadEmbedding.writeUnit(
                                pixels, unit: firstUnit + index, bytes, at: index * unitBytes, spread: spread)
                        } else {
                            PayloadEmbedding.writeDenseUnit(
                                pixels, unit: firstUnit + index, bytes, at: index * unitBytes, bits: bits)
                        }
                    }
                }
            }
            try writer.write(row: UnsafeRawBufferPointer(buffer))
        }
        if y == 0 { self.header = nil }
        consumed += share
    }
}
