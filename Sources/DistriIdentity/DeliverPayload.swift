import DistriCore

/// `Deliver`'s answer: `{"have": N, "done": BOOL}`.
public struct DeliverAnswer: Sendable, Equatable {
    /// Bytes the recipient holds.
    public var have: Int
    /// Whether the image is complete and in place.
    public var done: Bool

    /// An answer: `have` bytes held, `done` when the image is complete and in place.
    public init(have: Int, done: Bool) {
        self.have = have
        self.done = done
    }

    /// Parses an answer for an image of `total` bytes.
    public init(_ reply: [UInt8], total: Int) throws(IdentityError) {
        guard let object = (try? JSONParser.parse(reply))?.objectValue, let have = object["have"]?.wholeNumberValue,
            case .bool(let done)? = object["done"], have <= UInt64(total)
        else { throw .malformed("the recipient's Deliver answer is malformed") }
        self.init(have: Int(have), done: done)
    }

    /// The answer as JSON bytes.
    public func encoded() -> [UInt8] {
        Array(JSONValue.object(["have": .number(Double(have)), "done": .bool(done)]).jsonText.utf8)
    }
}

/// The parameters of a `Deliver` (and `RelayDeliver`, `MailboxPut`) call: `offset=O`, `total=T`.
public enum DeliverParams {
    /// The parameters for a chunk at `offset` of an image of `total` bytes.
    public static func make(offset: Int, total: Int) -> [String] {
        ["offset=\(offset)", "total=\(total)"]
    }

    /// The numeric parameter `name` when present and from 0 to `max` (nil otherwise).
    public static func value(_ name: String, in params: [String], max: Int) -> Int? {
        params.first { $0.hasPrefix(name + "=") }.flatMap { Int($0.dropFirst(name.count + 1)) }.flatMap {
            (0...max).contains($0) ? $0 : nil
        }
    }
}

/// `Deliver`'s body: the delivery's ticket as JSON (length-prefixed, u32 big-endian), then a chunk of
/// the sealed PNG. The ticket names the grant without its sealed key (``DeliveryTicket``), so no key
/// travels with a delivery, through the relay or into the mailbox.
public struct DeliverPayload: Sendable {
    /// Most bytes of the ticket's JSON.
    public static let maxGrantBytes = 64 << 10
    /// The delivery's ticket (named `grant`: it stands for the grant in force, checked against it).
    public var grant: DeliveryTicket
    /// A chunk of the sealed PNG.
    public var chunk: [UInt8]

    /// A body carrying `ticket` and `chunk`.
    public init(ticket: DeliveryTicket, chunk: [UInt8]) {
        self.grant = ticket
        self.chunk = chunk
    }

    /// A payload for a chunk delivered under `grant` (its ticket: the key stays behind).
    public init(grant: ViewGrant, chunk: [UInt8]) {
        self.init(ticket: grant.ticket, chunk: chunk)
    }

    /// The payload as bytes.
    public func encoded() -> [UInt8] {
        let text = Array(JSONValue.object(grant.document).jsonText.utf8)
        let count = UInt32(text.count)
        return [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: count >> UInt32($0)) } + text + chunk
    }

    /// Parses a payload; checks the grant's shape, not its signature.
    public init(decoding bytes: [UInt8]) throws(IdentityError) {
        guard bytes.count >= 4 else { throw .malformed("a delivery starts with a 4-byte length") }
        let count = bytes[0..<4].reduce(0) { $0 << 8 | Int($1) }
        guard count <= Self.maxGrantBytes, bytes.count >= 4 + count else {
            throw .malformed("a delivery's ticket is longer than the delivery or than \(Self.maxGrantBytes) bytes")
        }
        guard let object = (try? JSONParser.parse(Array(bytes[4..<(4 + count)])))?.objectValue else {
            throw .malformed("a delivery's ticket is not a JSON object")
        }
        self.grant = try DeliveryTicket(document: object)
        self.chunk = Array(bytes[(4 + count)...])
    }
}
