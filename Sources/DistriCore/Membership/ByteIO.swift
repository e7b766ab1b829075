/// Appends big-endian integers and length-prefixed strings to a byte array.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 128) {
        bytes.reserveCapacity(capacity)
    }

    mutating func write(_ value: UInt8) {
        bytes.append(value)
    }

    mutating func write(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func write(_ value: UInt64) {
        var shift = 56
        while shift >= 0 {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            shift -= 8
        }
    }

    /// Writes a u16 length and the UTF-8 bytes, cut at a character boundary to at most `maxLength` bytes.
    mutating func write(_ string: String, maxLength: Int) {
        var utf8 = Array(string.utf8)
        if utf8.count > maxLength {
            var end = maxLength
            // Back up to the start of a UTF-8 sequence (continuation bytes are 0b10xxxxxx).
            while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }
            utf8.removeSubrange(end...)
        }
        write(UInt16(utf8.count))
        bytes.append(contentsOf: utf8)
    }
}

/// Reads what ``ByteWriter`` wrote; every read checks the bytes remaining and throws rather than trap.
struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var remaining: Int { bytes.count - offset }

    mutating func readUInt8(_ field: String) throws(SWIMDecodingError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated("\(field) at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readUInt16(_ field: String) throws(SWIMDecodingError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated("\(field) at byte \(offset)") }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func readUInt64(_ field: String) throws(SWIMDecodingError) -> UInt64 {
        guard remaining >= 8 else { throw .truncated("\(field) at byte \(offset)") }
        var value: UInt64 = 0
        for index in offset..<offset + 8 {
            value = value << 8 | UInt64(bytes[index])
        }
        offset += 8
        return value
    }

    mutating func readString(_ field: String, maxLength: Int) throws(SWIMDecodingError) -> String {
        let length = Int(try readUInt16("\(field) length"))
        guard length <= maxLength else { throw .tooLong("\(field) of \(length) bytes, at most \(maxLength)") }
        guard remaining >= length else { throw .truncated("\(field) at byte \(offset)") }
        let slice = bytes[offset..<offset + length]
        offset += length
        guard let string = UTF8Text.string(slice) else { throw .invalidUTF8(field) }
        return string
    }

    /// Reads a u16 count and checks it against `limit` and against the bytes left, given that each item
    /// takes at least `minimumItemSize` bytes, so a forged count cannot make the decoder over-allocate.
    mutating func readCount(_ field: String, limit: Int, minimumItemSize: Int) throws(SWIMDecodingError) -> Int {
        let count = Int(try readUInt16("\(field) count"))
        guard count <= limit else { throw .tooMany("\(count) \(field), at most \(limit)") }
        guard count * minimumItemSize <= remaining else {
            throw .tooMany("\(count) \(field) cannot fit in the \(remaining) bytes left")
        }
        return count
    }
}
