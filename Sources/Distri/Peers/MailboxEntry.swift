import DistriCore
import DistriIdentity
import Foundation

/// One deposit waiting in the cloud's mailbox, as the `mailbox` collection holds it (pure: no I/O).
///
/// An entry is two kinds of documents:
/// - the entry itself, `mailbox/<key>` (``key(grantID:digest:)``: the grant's id and the first 16 hex
///   digits of the image's digest): `kind: "entry"`, recipient, sender (the grant's owner), image,
///   grant id, digest, the grant as deposited, `total`, `have` (bytes held), `chunks`, `complete`,
///   `createdAt` and `expiresAt` (milliseconds since 1970), and one field `p<i>` = `"<offset>/<token>"`
///   per chunk, naming the chunk document that holds the bytes from that offset;
/// - its chunks, `mailbox/<key>~<i>.<token>`: `kind: "chunk"`, `entry`, `offset`, `data` (base64),
///   `expiresAt`, `writtenAt`. The token is random per deposit call: two calls racing for the same
///   offset write different documents, and the entry's conditional update names the one that won.
struct MailboxEntry: Sendable, Equatable {
    static let collection = "mailbox"
    static let entryKind = "entry"
    static let chunkKind = "chunk"
    /// Most chunks an entry's document may name (far above what the size limits allow).
    static let maxParts = 1 << 16

    /// A chunk: where it starts in the image, and the token of its document.
    struct Part: Sendable, Equatable {
        var offset: Int
        var token: String
    }

    var id: String
    var recipient: String
    var sender: String
    var image: String
    var grantID: String
    var digest: [UInt8]
    /// The delivery's ticket as deposited (its JSON document; no key), handed to the recipient with
    /// every chunk.
    var grant: [String: JSONValue]
    var total: Int
    var have: Int
    var parts: [Part]
    var complete: Bool
    var createdAt: UInt64
    var expiresAt: UInt64

    /// The entry's document id: the grant's id and the first 16 hex digits of the image's digest
    /// (names hold only `a-z A-Z 0-9 . _ -`, so this is a valid id of at most 211 bytes).
    static func key(grantID: String, digest: [UInt8]) -> String {
        "\(grantID):\(Hex.encode(digest).prefix(16))"
    }

    /// The document id of an entry's chunk.
    static func chunkID(entry: String, index: Int, token: String) -> String {
        "\(entry)~\(index).\(token)"
    }

    /// The field naming chunk `index`.
    static func partField(_ index: Int) -> String { "p\(index)" }

    /// A new, empty entry for the image of `total` bytes delivered under `grant`.
    init(grant: DeliveryTicket, total: Int, now: UInt64, expiryMillis: UInt64) {
        self.id = Self.key(grantID: grant.id, digest: grant.digest)
        self.recipient = grant.recipient
        self.sender = grant.owner
        self.image = grant.image
        self.grantID = grant.id
        self.digest = grant.digest
        self.grant = grant.document
        self.total = total
        self.have = 0
        self.parts = []
        self.complete = false
        self.createdAt = now
        self.expiresAt = now.addingReportingOverflow(expiryMillis).overflow ? UInt64.max : now + expiryMillis
    }

    /// The entry document `id` holds; nil when it is a chunk or does not have an entry's shape.
    init?(id: String, document: [String: JSONValue]) {
        guard document["kind"]?.stringValue == Self.entryKind,
            let recipient = document["recipient"]?.stringValue, let sender = document["sender"]?.stringValue,
            let image = document["image"]?.stringValue, let grantID = document["grantID"]?.stringValue,
            let digest = document["digest"]?.stringValue.flatMap({ Hex.decode($0) }),
            let grant = document["grant"]?.objectValue,
            let total = document["total"]?.wholeNumberValue, let have = document["have"]?.wholeNumberValue,
            let chunks = document["chunks"]?.wholeNumberValue, chunks <= Self.maxParts, have <= total,
            case .bool(let complete)? = document["complete"],
            let createdAt = document["createdAt"]?.wholeNumberValue,
            let expiresAt = document["expiresAt"]?.wholeNumberValue
        else { return nil }
        var parts: [Part] = []
        for index in 0..<Int(chunks) {
            guard let text = document[Self.partField(index)]?.stringValue,
                let slash = text.firstIndex(of: "/"), let offset = Int(text[..<slash]),
                (0..<Int(total)).contains(offset), parts.last.map({ $0.offset < offset }) ?? (offset == 0)
            else { return nil }
            parts.append(Part(offset: offset, token: String(text[text.index(after: slash)...])))
        }
        self.id = id
        self.recipient = recipient
        self.sender = sender
        self.image = image
        self.grantID = grantID
        self.digest = digest
        self.grant = grant
        self.total = Int(total)
        self.have = Int(have)
        self.parts = parts
        self.complete = complete
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    /// The entry's document (its chunk fields are written one by one as chunks arrive).
    var document: [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "kind": .string(Self.entryKind), "recipient": .string(recipient), "sender": .string(sender),
            "image": .string(image), "grantID": .string(grantID), "digest": .string(Hex.encode(digest)),
            "grant": .object(grant), "total": .number(Double(total)), "have": .number(Double(have)),
            "chunks": .number(Double(parts.count)), "complete": .bool(complete),
            "createdAt": .number(Double(createdAt)), "expiresAt": .number(Double(expiresAt)),
        ]
        for (index, part) in parts.enumerated() {
            fields[Self.partField(index)] = .string("\(part.offset)/\(part.token)")
        }
        return fields
    }

    /// Whether the entry's time is up at `now`.
    func isExpired(at now: UInt64) -> Bool { expiresAt <= now }

    /// The chunk holding byte `offset`: its index, its part, and where it ends.
    func part(containing offset: Int) -> (index: Int, part: Part, end: Int)? {
        guard offset >= 0, offset < have else { return nil }
        // The last part starting at or before `offset` (parts are sorted by offset, the first at 0).
        var low = 0
        var high = parts.count - 1
        guard high >= 0 else { return nil }
        while low < high {
            let middle = (low + high + 1) / 2
            if parts[middle].offset <= offset { low = middle } else { high = middle - 1 }
        }
        let end = low + 1 < parts.count ? parts[low + 1].offset : have
        return (low, parts[low], end)
    }

    /// The document of a chunk of this entry.
    func chunkDocument(offset: Int, bytes: [UInt8], now: UInt64) -> [String: JSONValue] {
        [
            "kind": .string(Self.chunkKind), "entry": .string(id), "offset": .number(Double(offset)),
            "data": .string(Data(bytes).base64EncodedString()), "expiresAt": .number(Double(expiresAt)),
            "writtenAt": .number(Double(now)),
        ]
    }

    /// The bytes of a chunk document, or nil when it is not one.
    static func chunkBytes(_ document: [String: JSONValue]) -> [UInt8]? {
        guard document["kind"]?.stringValue == chunkKind, let text = document["data"]?.stringValue,
            let data = Data(base64Encoded: text)
        else { return nil }
        return Array(data)
    }

    /// The line `MailboxList` shows for this entry.
    var listing: JSONValue {
        .object([
            "id": .string(id), "sender": .string(sender), "image": .string(image),
            "digest": .string(Hex.encode(digest)), "total": .number(Double(total)),
            "expiresAt": .number(Double(expiresAt)),
        ])
    }
}

/// The mailbox's quotas, decided over the entries held (pure).
enum MailboxQuota {
    /// Why a new entry of `total` bytes from `sender` for `recipient` cannot be kept next to `held`
    /// (the entries the cloud holds, without the one it replaces), in words a person can act on; nil
    /// when it fits.
    static func refusal(
        total: Int, recipient: String, sender: String, held: [MailboxEntry], limits: MailboxLimits
    ) -> String? {
        let more = size(total)
        if total > limits.perRecipientBytes {
            return
                "an image of \(more) does not fit in a mailbox, which holds at most \(size(limits.perRecipientBytes))"
        }
        let forRecipient = held.filter { $0.recipient == recipient }
        let recipientBytes = forRecipient.reduce(0) { $0 + $1.total }
        if recipientBytes + total > limits.perRecipientBytes {
            return
                "\(recipient)'s mailbox is full: \(size(recipientBytes)) held of \(size(limits.perRecipientBytes)); \(more) more would exceed it (it empties as \(recipient) collects, or as entries expire)"
        }
        if forRecipient.count >= limits.maxEntriesPerRecipient {
            return
                "\(recipient)'s mailbox is full: it holds \(forRecipient.count) deliveries, the most it may (it empties as \(recipient) collects, or as entries expire)"
        }
        let senderBytes = held.filter { $0.sender == sender }.reduce(0) { $0 + $1.total }
        if senderBytes + total > limits.perSenderBytes {
            return
                "\(sender) already has \(size(senderBytes)) waiting in mailboxes, of the \(size(limits.perSenderBytes)) one sender may; \(more) more would exceed it"
        }
        let cloudBytes = held.reduce(0) { $0 + $1.total }
        if cloudBytes + total > limits.totalBytes {
            return
                "the cloud's mailboxes are full: \(size(cloudBytes)) held of \(size(limits.totalBytes)); \(more) more would exceed it"
        }
        if held.count >= limits.maxEntries {
            return "the cloud's mailboxes are full: they hold \(held.count) deliveries, the most they may"
        }
        return nil
    }

    /// `bytes` for people: `512 bytes`, `30.5 KiB`, `60.0 MiB`; whole limits without decimals (`64 MiB`).
    static func size(_ bytes: Int) -> String {
        func scaled(_ unit: Int, _ name: String) -> String {
            bytes % unit == 0 && bytes >= unit
                ? "\(bytes / unit) \(name)" : String(format: "%.1f \(name)", Double(bytes) / Double(unit))
        }
        if bytes >= 1 << 20 { return scaled(1 << 20, "MiB") }
        if bytes >= 1 << 10 { return scaled(1 << 10, "KiB") }
        return "\(bytes) bytes"
    }
}

/// Which mailbox documents a node's sweep deletes (pure).
enum MailboxSweep {
    /// How long a chunk no entry names may stay: a deposit call writes its chunk before the entry's
    /// update names it, and this leaves that call (and the replication of its entry) ample time.
    static let orphanGraceMillis: UInt64 = 10 * 60 * 1000

    /// Ids of `documents` (the `mailbox` collection) to delete at `now`, at most `limit`: entries and
    /// chunks past their `expiresAt`, and chunks their entry does not name (a call that lost a race, or
    /// whose entry is gone) once ``orphanGraceMillis`` have passed since they were written.
    static func due(_ documents: [(id: String, body: [String: JSONValue])], now: UInt64, limit: Int) -> [String] {
        var named: Set<String> = []
        for document in documents {
            guard let entry = MailboxEntry(id: document.id, document: document.body) else { continue }
            for (index, part) in entry.parts.enumerated() {
                named.insert(MailboxEntry.chunkID(entry: entry.id, index: index, token: part.token))
            }
        }
        var due: [String] = []
        for document in documents where due.count < limit {
            let body = document.body
            if let expires = body["expiresAt"]?.wholeNumberValue, expires <= now {
                due.append(document.id)
            } else if body["kind"]?.stringValue == MailboxEntry.chunkKind, !named.contains(document.id),
                let written = body["writtenAt"]?.wholeNumberValue, written + orphanGraceMillis <= now
            {
                due.append(document.id)
            }
        }
        return due
    }

    /// Entries and bytes held in `documents` (the `mailbox` collection).
    static func held(_ documents: [(id: String, body: [String: JSONValue])]) -> (entries: Int, bytes: UInt64) {
        var entries = 0
        var bytes: UInt64 = 0
        for document in documents {
            guard let entry = MailboxEntry(id: document.id, document: document.body) else { continue }
            entries += 1
            bytes += UInt64(entry.have)
        }
        return (entries, bytes)
    }
}
