extension JSONValue {
    /// Compact JSON text (object keys sorted, so equal values give equal text).
    public var jsonText: String {
        var out = ""
        write(to: &out)
        return out
    }

    /// JSON text indented by two spaces per level (object keys sorted), for people.
    public var prettyJSONText: String {
        var out = ""
        write(to: &out, indent: 0)
        return out
    }

    /// Appends compact JSON text to `out`.
    public func write(to out: inout String) {
        write(to: &out, indent: nil)
    }

    /// Appends JSON text to `out`: compact when `indent` is nil, else indented from that level.
    private func write(to out: inout String, indent: Int?) {
        func newline(_ level: Int) {
            guard indent != nil else { return }
            out += "\n" + String(repeating: "  ", count: level)
        }
        let level = indent ?? 0
        let inner = indent.map { $0 + 1 }
        switch self {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .number(let number):
            if number.isFinite, number == number.rounded(), abs(number) < 1e15 {
                out += String(Int64(number))
            } else if number.isFinite {
                out += "\(number)"
            } else {
                out += "null"
            }
        case .string(let text): Self.quote(text, into: &out)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                newline(level + 1)
                item.write(to: &out, indent: inner)
            }
            if !items.isEmpty { newline(level) }
            out += "]"
        case .object(let fields):
            out += "{"
            for (index, field) in fields.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { out += "," }
                newline(level + 1)
                Self.quote(field.key, into: &out)
                out += indent == nil ? ":" : ": "
                field.value.write(to: &out, indent: inner)
            }
            if !fields.isEmpty { newline(level) }
            out += "}"
        }
    }

    /// Appends `text` as a JSON string literal (quoted, escaped) to `out`.
    public static func quote(_ text: String, into out: inout String) {
        out += "\""
        // Most strings need no escape: append them whole instead of scalar by scalar.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += text
            out += "\""
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u00" + Hex.encode([UInt8(scalar.value)])
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
