/// Why bytes could not be decoded as a ``SWIMEnvelope``.
///
/// Two errors are equal when they are of the same kind, whatever their ``detail``.
public struct SWIMDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kinds of error, each with the words that describe it.
    private enum Code: String, Sendable, Equatable {
        case truncated = "truncated SWIM message"
        case unsupportedVersion = "unsupported SWIM message version"
        case unknownMessage = "unknown SWIM message"
        case unknownStatus = "unknown member status"
        case tooLong = "string too long in SWIM message"
        case tooMany = "too many items in SWIM message"
        case invalidUTF8 = "invalid UTF-8 in SWIM message"
        case trailingBytes = "trailing bytes after SWIM message"
    }

    private let code: Code
    /// Details of what was wrong and where.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The input ended in the middle of a field.
    public static func truncated(_ detail: String) -> Self { .init(.truncated, detail) }
    /// The version byte is not one this build understands.
    public static func unsupportedVersion(_ version: UInt8) -> Self {
        .init(.unsupportedVersion, "version \(version), expected \(SWIMEnvelope.wireVersion)")
    }
    /// The message tag is unknown.
    public static func unknownMessage(_ tag: UInt8) -> Self { .init(.unknownMessage, "message tag \(tag)") }
    /// The member status byte is unknown.
    public static func unknownStatus(_ raw: UInt8) -> Self { .init(.unknownStatus, "member status \(raw)") }
    /// A string is longer than allowed.
    public static func tooLong(_ detail: String) -> Self { .init(.tooLong, detail) }
    /// A count is larger than allowed or than the remaining bytes could hold.
    public static func tooMany(_ detail: String) -> Self { .init(.tooMany, detail) }
    /// A string is not valid UTF-8.
    public static func invalidUTF8(_ detail: String) -> Self { .init(.invalidUTF8, detail) }
    /// Bytes are left over after the message.
    public static func trailingBytes(_ count: Int) -> Self { .init(.trailingBytes, "\(count) bytes after the message") }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    public var description: String { "\(code.rawValue): \(detail)" }
}
