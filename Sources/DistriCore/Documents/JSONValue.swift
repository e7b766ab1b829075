/// A JSON value. Pure and Codable, so the shells can decode it with any JSON coder.
public enum JSONValue: Hashable, Sendable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, held as an IEEE double.
    case number(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object.
    case object([String: JSONValue])

    /// The value at a dotted path (`address.city`), or nil when it is missing.
    public subscript(path path: String) -> JSONValue? {
        var current = self
        for key in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard case .object(let fields) = current, let next = fields[String(key)] else { return nil }
            current = next
        }
        return current
    }

    /// The object's fields, or nil for any other kind of value.
    public var objectValue: [String: JSONValue]? {
        if case .object(let fields) = self { return fields }
        return nil
    }

    /// Orders values for sorting and ranges: null < bool < number < string < array < object; within a
    /// kind, the natural order. Nil when the kinds differ and a range cannot compare them.
    public func compare(_ other: JSONValue) -> Int? {
        switch (self, other) {
        case (.number(let a), .number(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a), .string(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        case (.null, .null): return 0
        default: return nil
        }
    }

    /// Rank of the value's kind, for a total sort order across kinds.
    var kindRank: Int {
        switch self {
        case .null: 0
        case .bool: 1
        case .number: 2
        case .string: 3
        case .array: 4
        case .object: 5
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue {
    /// Integers up to 2^53 survive a JSON number (a Double) exactly.
    public static let maxExactInteger: UInt64 = 1 << 53

    /// The string, or nil for any other kind of value.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The number, or nil for any other kind of value.
    public var numberValue: Double? {
        if case .number(let number) = self { return number }
        return nil
    }

    /// The number when it is a whole number from 0 to 2^53 (exact in a JSON number), else nil. Safe
    /// on input from the network or disk, where `UInt64(double)` would trap on NaN, infinities or
    /// values beyond `UInt64.max`.
    public var wholeNumberValue: UInt64? {
        guard case .number(let number) = self, number >= 0, number <= Double(Self.maxExactInteger),
            number == number.rounded()
        else { return nil }
        return UInt64(number)
    }

    /// The array, or nil for any other kind of value.
    public var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }
}
