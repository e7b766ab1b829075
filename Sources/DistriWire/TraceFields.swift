import NIOCore

/// The trace context a request carries: the propagation fields of the caller's tracer, as an HTTP
/// request carries them in headers (W3C Trace Context's `traceparent` and `tracestate` with
/// OpenTelemetry). Optional on the wire: a request without them costs nothing extra. Bounded: at
/// most ``maxFields`` fields, keys of 1 to ``maxKeyBytes`` bytes, values of at most
/// ``maxValueBytes`` (docs/wire-format.md).
public struct TraceFields: Sendable, Equatable {
    /// Most fields a request carries.
    public static let maxFields = 8
    /// Longest key, in UTF-8 bytes.
    public static let maxKeyBytes = 64
    /// Longest value, in UTF-8 bytes.
    public static let maxValueBytes = 512

    /// The fields in the order the tracer wrote them.
    public private(set) var fields: [(key: String, value: String)] = []

    /// No fields: an untraced request.
    public init() {}

    /// True when the request carries no trace context.
    public var isEmpty: Bool { fields.isEmpty }

    /// The value of `key`, if present (keys compare case-insensitively, as HTTP headers do).
    public subscript(key: String) -> String? {
        fields.first { Self.sameKey($0.key, key) }?.value
    }

    /// Keys compare without case (ASCII), without making lowercased copies.
    private static func sameKey(_ a: String, _ b: String) -> Bool {
        func lower(_ byte: UInt8) -> UInt8 { (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }
        return a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).allSatisfy { lower($0) == lower($1) }
    }

    /// Sets `key` to `value`, replacing an earlier value; a field beyond the bounds is dropped
    /// (returns false), so an encoded request always decodes.
    @discardableResult
    public mutating func set(_ value: String, forKey key: String) -> Bool {
        guard (1...Self.maxKeyBytes).contains(key.utf8.count), value.utf8.count <= Self.maxValueBytes else {
            return false
        }
        if let index = fields.firstIndex(where: { Self.sameKey($0.key, key) }) {
            fields[index].value = value
            return true
        }
        guard fields.count < Self.maxFields else { return false }
        fields.append((key, value))
        return true
    }

    /// The same fields with the same values in the same order.
    public static func == (lhs: TraceFields, rhs: TraceFields) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    /// Bytes the fields take on the wire: a count, then each key and value with its length.
    var encodedSize: Int { 1 + fields.reduce(0) { $0 + 1 + $1.key.utf8.count + 2 + $1.value.utf8.count } }

    func encode(into out: inout ByteBuffer) {
        out.writeInteger(UInt8(fields.count))
        for (key, value) in fields {
            out.writeInteger(UInt8(key.utf8.count))
            out.writeString(key)
            out.writeInteger(UInt16(value.utf8.count))
            out.writeString(value)
        }
    }

    static func decode(from buffer: inout ByteBuffer) throws(WireError) -> TraceFields {
        guard let count = buffer.readInteger(as: UInt8.self), Int(count) <= maxFields else {
            throw .malformedMessage("trace context missing or over \(maxFields) fields")
        }
        var decoded = TraceFields()
        for index in 0..<Int(count) {
            guard let keyLength = buffer.readInteger(as: UInt8.self), (1...maxKeyBytes).contains(Int(keyLength)),
                let key = (try? buffer.readUTF8ValidatedString(length: Int(keyLength))) ?? nil,
                let valueLength = buffer.readInteger(as: UInt16.self), Int(valueLength) <= maxValueBytes,
                let value = (try? buffer.readUTF8ValidatedString(length: Int(valueLength))) ?? nil
            else { throw .malformedMessage("trace context field \(index) is truncated, too long or not UTF-8") }
            decoded.fields.append((key, value))
        }
        return decoded
    }
}
