#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A storage failure; the message names the file involved.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public var description: String

    package init(_ description: String) { self.description = description }

    /// A failed system call on `path`, with the text of `code`.
    package static func system(_ operation: String, _ path: String, _ code: Int32) -> StorageError {
        StorageError("\(path): \(operation) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}
