/// Deterministic bytes of a record's fields for signing: a domain tag, then every field in a fixed
/// order, strings and byte strings prefixed by their length (u32, big-endian), integers as u64
/// big-endian. Two different records never give the same bytes, and no other kind of signed
/// message starts with the same tag.
struct CanonicalEncoder {
    private(set) var bytes: [UInt8] = []

    init(domain: String) {
        append(domain)
    }

    mutating func append(_ text: String) {
        append(Array(text.utf8))
    }

    mutating func append(_ raw: [UInt8]) {
        append32(UInt32(clamping: raw.count))
        bytes += raw
    }

    mutating func append(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    mutating func append(list: [String]) {
        append32(UInt32(clamping: list.count))
        for item in list { append(item) }
    }

    private mutating func append32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }
}
