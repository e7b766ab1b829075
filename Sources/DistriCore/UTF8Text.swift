/// Strings from UTF-8 bytes that must be valid (bad input is refused, never repaired).
///
/// `String(validating:as:)` goes through the standard library's generic validation, which looks up
/// generic metadata at run time on every call: measurable on the replication and JSON hot paths.
/// Decoding a buffer pointer is specialised; decoding repairs invalid bytes with U+FFFD, so the
/// text is the input exactly when the input was valid.
public enum UTF8Text {
    /// The string the bytes spell, or nil when they are not valid UTF-8.
    @inlinable
    public static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        if !bytes.contains(where: { $0 >= 0x80 }) { return text }
        return text.utf8.elementsEqual(bytes) ? text : nil
    }

    /// The string the bytes spell, or nil when they are not valid UTF-8.
    @inlinable
    public static func string(_ bytes: ArraySlice<UInt8>) -> String? {
        bytes.withUnsafeBufferPointer { string($0) }
    }
}
