/// Why replication bytes could not be decoded.
public struct ReplicaDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Appends varints, fixed integers and length-prefixed strings.
struct BinaryWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func fixed64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }
}

/// Reads what ``BinaryWriter`` wrote; every read checks bounds and throws rather than trap.
struct BinaryReader {
    let bytes: [UInt8]
    var offset = 0
    /// The format version the bytes name (their first byte, for replication messages and log entries).
    var version: UInt8 = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func byte() throws(ReplicaDecodingError) -> UInt8 {
        guard offset < bytes.count else { throw ReplicaDecodingError("truncated at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func varint() throws(ReplicaDecodingError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64 else { throw ReplicaDecodingError("varint too long at byte \(offset)") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func fixed64() throws(ReplicaDecodingError) -> UInt64 {
        guard bytes.count - offset >= 8 else { throw ReplicaDecodingError("truncated at byte \(offset)") }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << UInt64(index * 8) }
        offset += 8
        return value
    }

    /// A count, checked against what the remaining bytes could hold (each item takes at least one byte).
    mutating func count() throws(ReplicaDecodingError) -> Int {
        let value = try varint()
        guard value <= UInt64(bytes.count - offset) else {
            throw ReplicaDecodingError("count \(value) exceeds the \(bytes.count - offset) bytes left")
        }
        return Int(value)
    }

    mutating func string() throws(ReplicaDecodingError) -> String {
        try string(length: try count())
    }

    private mutating func string(length: Int) throws(ReplicaDecodingError) -> String {
        let slice = bytes[offset..<offset + length]
        offset += length
        guard let string = UTF8Text.string(slice) else {
            throw ReplicaDecodingError("invalid UTF-8 at byte \(offset - length)")
        }
        return string
    }

    /// Node names decoded so far in this message (a few at most).
    private var nodeNames: [String] = []

    /// A string that repeats across the message, such as the node named by every stamp: equal bytes
    /// give back the same `String`, sharing its storage instead of allocating a copy per stamp (and
    /// letting equality checks succeed on identity).
    mutating func repeatedString() throws(ReplicaDecodingError) -> String {
        let length = try count()
        let start = offset
        let known = bytes.withUnsafeBufferPointer { all -> String? in
            let slice = UnsafeBufferPointer(rebasing: all[start..<start + length])
            // Compared over the names' own UTF-8 storage (a generic comparison of the views costs more).
            for known in nodeNames where known.utf8.count == length {
                let equal =
                    known.utf8.withContiguousStorageIfAvailable { $0.elementsEqual(slice) }
                    ?? known.utf8.elementsEqual(slice)
                if equal { return known }
            }
            return nil
        }
        if let known {
            offset += length
            return known
        }
        let string = try string(length: length)
        if nodeNames.count < 16 { nodeNames.append(string) }
        return string
    }

    mutating func bool() throws(ReplicaDecodingError) -> Bool {
        switch try byte() {
        case 0: return false
        case 1: return true
        case let other: throw ReplicaDecodingError("bad boolean \(other)")
        }
    }
}
