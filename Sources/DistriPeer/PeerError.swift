/// A failure of a peer command, with a message meant for the person who ran it.
public struct PeerError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
