/// The binary encoding of replication messages and log entries: compact, versioned by a leading
/// byte, and strict on input (bounds-checked, depth-limited, no trailing bytes). Version 2 added
/// increments and idempotency keys to documents; version 1 (older nodes' messages and logs) is
/// still read.
public enum ReplicaCodec {
    static let version: UInt8 = 2
    static let oldestReadable: UInt8 = 1
    static let maxDepth = 64

    /// The binary form of a replication request.
    public static func encode(_ request: ReplicaRequest) -> [UInt8] {
        // A push's size is about its changes' count times a small document's: one allocation, usually.
        let capacity = if case .push(let changes, _, _) = request { 128 + 256 * changes.count } else { 256 }
        var out = BinaryWriter(capacity: capacity)
        out.byte(version)
        switch request {
        case .push(let changes, let chain, let sender):
            out.byte(1)
            write(changes, to: &out)
            out.bool(chain != nil)
            if let chain {
                out.string(chain.origin)
                write(chain.since, to: &out)
                write(chain.upTo, to: &out)
            }
            write(sender, to: &out)
        case .pull(let pull):
            out.byte(2)
            write(pull.since, to: &out)
            out.bool(pull.digests != nil)
            if let digests = pull.digests {
                out.varint(UInt64(digests.count))
                for (name, digest) in digests.sorted(by: { $0.key < $1.key }) {
                    out.string(name)
                    write(digest.created, to: &out)
                    write(digest.dropped, to: &out)
                    out.varint(UInt64(digest.ranges.count))
                    for hash in digest.ranges { out.fixed64(hash) }
                }
            }
            write(pull.coverage, to: &out)
            write(pull.incarnation, to: &out)
        case .prepare(let key, let ballot):
            out.byte(3)
            write(key, to: &out)
            write(ballot, to: &out)
        case .propose(let key, let ballot, let document):
            out.byte(4)
            write(key, to: &out)
            write(ballot, to: &out)
            write(document, to: &out)
        case .commit(let key, let ballot, let document):
            out.byte(5)
            write(key, to: &out)
            write(ballot, to: &out)
            write(document, to: &out)
        }
        return out.bytes
    }

    /// Decodes a replication request.
    public static func decodeRequest(_ bytes: [UInt8]) throws(ReplicaDecodingError) -> ReplicaRequest {
        var input = BinaryReader(bytes)
        try checkVersion(&input)
        let request: ReplicaRequest
        switch try input.byte() {
        case 1:
            let changes = try readChanges(&input)
            var chain: PushChain?
            if try input.bool() {
                chain = PushChain(origin: try input.string(), since: try readStamp(&input), upTo: try readStamp(&input))
            }
            request = .push(changes, chain: chain, sender: try readOptionalString(&input))
        case 2:
            let since = try readWatermark(&input)
            var digests: [String: AntiEntropy.CollectionDigest]?
            if try input.bool() {
                var all: [String: AntiEntropy.CollectionDigest] = [:]
                for _ in 0..<(try input.count()) {
                    let name = try input.string()
                    let created = try readStamp(&input)
                    let dropped = try readOptionalStamp(&input)
                    let count = try input.count()
                    guard count == AntiEntropy.rangeCount else {
                        throw ReplicaDecodingError("digest of \(count) ranges")
                    }
                    var ranges: [UInt64] = []
                    ranges.reserveCapacity(count)
                    for _ in 0..<count { ranges.append(try input.fixed64()) }
                    all[name] = AntiEntropy.CollectionDigest(created: created, dropped: dropped, ranges: ranges)
                }
                digests = all
            }
            let coverage = try readCoverage(&input)
            request = .pull(
                PullRequest(
                    since: since, digests: digests, coverage: coverage, incarnation: try readOptionalString(&input)))
        case 3: request = .prepare(try readKey(&input), try readBallot(&input))
        case 4: request = .propose(try readKey(&input), try readBallot(&input), try readDocument(&input))
        case 5: request = .commit(try readKey(&input), try readBallot(&input), try readDocument(&input))
        case let tag: throw ReplicaDecodingError("unknown request tag \(tag)")
        }
        try checkEnd(input)
        return request
    }

    /// The binary form of a replication response.
    public static func encode(_ response: ReplicaResponse) -> [UInt8] {
        var out = BinaryWriter()
        out.byte(version)
        switch response {
        case .merged: out.byte(1)
        case .pulled(let reply):
            out.byte(2)
            write(reply.upTo, to: &out)
            out.bool(reply.complete)
            out.bool(reply.understood)
            write(reply.coverage, to: &out)
            write(reply.changes, to: &out)
        case .promise(let promise, let promised):
            out.byte(3)
            write(promised, to: &out)
            out.bool(promise != nil)
            if let promise {
                out.bool(promise.accepted != nil)
                if let accepted = promise.accepted { write(accepted, to: &out) }
                out.bool(promise.acceptedDocument != nil)
                if let document = promise.acceptedDocument { write(document, to: &out) }
                write(promise.committed, to: &out)
                out.bool(promise.current != nil)
                if let current = promise.current { write(current, to: &out) }
            }
        case .accepted(let accepted, let promised):
            out.byte(4)
            out.bool(accepted)
            write(promised, to: &out)
        }
        return out.bytes
    }

    /// Decodes a replication response.
    public static func decodeResponse(_ bytes: [UInt8]) throws(ReplicaDecodingError) -> ReplicaResponse {
        var input = BinaryReader(bytes)
        try checkVersion(&input)
        let response: ReplicaResponse
        switch try input.byte() {
        case 1: response = .merged
        case 2:
            guard let upTo = try readWatermark(&input) else {
                throw ReplicaDecodingError("pull reply without watermark")
            }
            let complete = try input.bool()
            let understood = try input.bool()
            let coverage = try readCoverage(&input)
            response = .pulled(
                PullReply(
                    upTo: upTo, complete: complete, understood: understood, coverage: coverage,
                    changes: try readChanges(&input)))
        case 3:
            let promised = try readBallot(&input)
            guard try input.bool() else {
                response = .promise(nil, promised: promised)
                break
            }
            let accepted = try input.bool() ? try readBallot(&input) : nil
            let acceptedDocument = try input.bool() ? try readDocument(&input) : nil
            let committed = try readBallot(&input)
            let current = try input.bool() ? try readDocument(&input) : nil
            response = .promise(
                CASPromise(
                    accepted: accepted, acceptedDocument: acceptedDocument, committed: committed, current: current),
                promised: promised)
        case 4: response = .accepted(try input.bool(), promised: try readBallot(&input))
        case let tag: throw ReplicaDecodingError("unknown response tag \(tag)")
        }
        try checkEnd(input)
        return response
    }

    /// The binary form of a log entry.
    public static func encode(_ entry: PersistedEntry) -> [UInt8] {
        var out = BinaryWriter()
        write(entry, to: &out)
        return out.bytes
    }

    /// Appends the binary form of a log entry (the bytes the one-argument form returns) to `bytes`, so
    /// that a write-ahead log can encode a group of entries into one reused buffer.
    public static func encode(_ entry: PersistedEntry, appendingTo bytes: inout [UInt8]) {
        var out = BinaryWriter(capacity: 0)
        swap(&out.bytes, &bytes)
        write(entry, to: &out)
        swap(&out.bytes, &bytes)
    }

    private static func write(_ entry: PersistedEntry, to out: inout BinaryWriter) {
        out.byte(version)
        switch entry {
        case .change(let sequence, let change):
            out.byte(1)
            out.varint(sequence)
            write(change, to: &out)
        case .syncState(let state):
            out.byte(2)
            out.varint(state.epoch)
            out.varint(UInt64(state.pulled.count))
            for (peer, mark) in state.pulled.sorted(by: { $0.key < $1.key }) {
                out.string(peer)
                write(mark, to: &out)
            }
            write(state.coverage, to: &out)
            write(state.clock, to: &out)
        case .acceptor(let key, let acceptor):
            out.byte(3)
            write(key, to: &out)
            write(acceptor.promised, to: &out)
            out.bool(acceptor.accepted != nil)
            if let accepted = acceptor.accepted {
                write(accepted.ballot, to: &out)
                write(accepted.document, to: &out)
            }
            write(acceptor.committed, to: &out)
        }
    }

    /// Decodes a log entry.
    public static func decodeEntry(_ bytes: [UInt8]) throws(ReplicaDecodingError) -> PersistedEntry {
        var input = BinaryReader(bytes)
        try checkVersion(&input)
        let entry: PersistedEntry
        switch try input.byte() {
        case 1: entry = .change(sequence: try input.varint(), try readChange(&input))
        case 2:
            let epoch = try input.varint()
            var pulled: [String: Watermark] = [:]
            for _ in 0..<(try input.count()) {
                let peer = try input.string()
                guard let mark = try readWatermark(&input) else { throw ReplicaDecodingError("missing watermark") }
                pulled[peer] = mark
            }
            let coverage = try readCoverage(&input)
            entry = .syncState(
                ReplicaSyncState(epoch: epoch, pulled: pulled, coverage: coverage, clock: try readStamp(&input)))
        case 3:
            let key = try readKey(&input)
            let promised = try readBallot(&input)
            let accepted = try input.bool() ? (try readBallot(&input), try readDocument(&input)) : nil
            entry = .acceptor(
                key, DocumentAcceptor(promised: promised, accepted: accepted, committed: try readBallot(&input)))
        case let tag: throw ReplicaDecodingError("unknown log entry tag \(tag)")
        }
        try checkEnd(input)
        return entry
    }

    // MARK: Parts

    private static func checkVersion(_ input: inout BinaryReader) throws(ReplicaDecodingError) {
        let found = try input.byte()
        guard (oldestReadable...version).contains(found) else {
            throw ReplicaDecodingError("replication version \(found), expected \(oldestReadable) to \(version)")
        }
        input.version = found
    }

    private static func checkEnd(_ input: BinaryReader) throws(ReplicaDecodingError) {
        guard input.isAtEnd else { throw ReplicaDecodingError("\(input.bytes.count - input.offset) trailing bytes") }
    }

    static func write(_ stamp: HLCTimestamp, to out: inout BinaryWriter) {
        out.varint(stamp.millis)
        out.varint(UInt64(stamp.counter))
        out.string(stamp.node)
    }

    static func readStamp(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> HLCTimestamp {
        let millis = try input.varint()
        let counter = try input.varint()
        guard counter <= UInt64(UInt32.max) else { throw ReplicaDecodingError("clock counter \(counter) too large") }
        return HLCTimestamp(millis: millis, counter: UInt32(counter), node: try input.repeatedString())
    }

    static func write(_ stamp: HLCTimestamp?, to out: inout BinaryWriter) {
        out.bool(stamp != nil)
        if let stamp { write(stamp, to: &out) }
    }

    static func readOptionalStamp(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> HLCTimestamp? {
        try input.bool() ? try readStamp(&input) : nil
    }

    static func write(_ ballot: Ballot, to out: inout BinaryWriter) {
        out.varint(ballot.round)
        out.string(ballot.node)
    }

    static func readBallot(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> Ballot {
        Ballot(round: try input.varint(), node: try input.string())
    }

    static func write(_ text: String?, to out: inout BinaryWriter) {
        out.bool(text != nil)
        if let text { out.string(text) }
    }

    static func readOptionalString(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> String? {
        try input.bool() ? try input.string() : nil
    }

    static func write(_ mark: Watermark?, to out: inout BinaryWriter) {
        out.bool(mark != nil)
        if let mark {
            out.varint(mark.epoch)
            out.varint(mark.sequence)
        }
    }

    static func readWatermark(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> Watermark? {
        guard try input.bool() else { return nil }
        return Watermark(epoch: try input.varint(), sequence: try input.varint())
    }

    static func write(_ key: DocumentKey, to out: inout BinaryWriter) {
        out.string(key.collection)
        out.bool(key.id != nil)
        if let id = key.id { out.string(id) }
    }

    static func readKey(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> DocumentKey {
        DocumentKey(collection: try input.string(), id: try input.bool() ? try input.string() : nil)
    }

    static func write(_ coverage: [String: HLCTimestamp], to out: inout BinaryWriter) {
        out.varint(UInt64(coverage.count))
        for stamp in coverage.values.sorted(by: { $0.node < $1.node }) { write(stamp, to: &out) }
    }

    static func readCoverage(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> [String: HLCTimestamp] {
        var coverage: [String: HLCTimestamp] = [:]
        for _ in 0..<(try input.count()) {
            let stamp = try readStamp(&input)
            coverage[stamp.node] = stamp
        }
        return coverage
    }

    static func write(_ changes: [DocumentChange], to out: inout BinaryWriter) {
        out.varint(UInt64(changes.count))
        for change in changes { write(change, to: &out) }
    }

    static func readChanges(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> [DocumentChange] {
        let count = try input.count()
        var changes: [DocumentChange] = []
        changes.reserveCapacity(count)
        for _ in 0..<count { changes.append(try readChange(&input)) }
        return changes
    }

    static func write(_ change: DocumentChange, to out: inout BinaryWriter) {
        switch change {
        case .collection(let name, let created, let dropped):
            out.byte(1)
            out.string(name)
            write(created, to: &out)
            write(dropped, to: &out)
        case .document(let collection, let document):
            out.byte(2)
            out.string(collection)
            write(document, to: &out)
        }
    }

    static func readChange(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> DocumentChange {
        switch try input.byte() {
        case 1:
            return .collection(
                name: try input.string(), created: try readStamp(&input), dropped: try readOptionalStamp(&input))
        case 2: return .document(collection: try input.string(), try readDocument(&input))
        case let tag: throw ReplicaDecodingError("unknown change tag \(tag)")
        }
    }

    static func write(_ document: ReplicatedDocument, to out: inout BinaryWriter) {
        out.string(document.id)
        write(document.deleted, to: &out)
        write(document.cleared, to: &out)
        out.varint(UInt64(document.fields.count))
        for (name, field) in document.fields.sorted(by: { $0.key < $1.key }) {
            out.string(name)
            write(field.stamp, to: &out)
            out.byte(
                (field.value != nil ? 1 : 0) | (field.startsAfterStamp ? 2 : 0) | (field.counts.isEmpty ? 0 : 4))
            if let value = field.value { write(value, to: &out) }
            guard !field.counts.isEmpty else { continue }
            out.varint(UInt64(field.counts.count))
            for (origin, count) in field.counts.sorted(by: { $0.key < $1.key }) {
                out.string(origin)
                out.fixed64(count.total.bitPattern)
                write(count.stamp, to: &out)
            }
        }
        out.varint(UInt64(document.applied.count))
        for (key, millis) in document.applied.sorted {
            out.varint(key)
            out.varint(millis)
        }
    }

    static func readDocument(_ input: inout BinaryReader) throws(ReplicaDecodingError) -> ReplicatedDocument {
        let id = try input.string()
        let deleted = try readOptionalStamp(&input)
        let cleared = try readOptionalStamp(&input)
        let count = try input.count()
        var fields: [String: ReplicatedDocument.Field] = [:]
        fields.reserveCapacity(min(count, 64))  // a forged count must not reserve much
        for _ in 0..<count {
            let name = try input.string()
            let stamp = try readStamp(&input)
            guard input.version >= 2 else {
                let value = try input.bool() ? try readValue(&input, depth: 0) : nil
                fields[name] = ReplicatedDocument.Field(value: value, stamp: stamp)
                continue
            }
            let flags = try input.byte()
            guard flags & ~7 == 0 else { throw ReplicaDecodingError("unknown field flags \(flags)") }
            let value = flags & 1 != 0 ? try readValue(&input, depth: 0) : nil
            var counts: [String: ReplicatedDocument.Field.Count] = [:]
            if flags & 4 != 0 {
                for _ in 0..<(try input.count()) {
                    let origin = try input.repeatedString()
                    let total = Double(bitPattern: try input.fixed64())
                    guard total.isFinite else { throw ReplicaDecodingError("an increment total that is not finite") }
                    counts[origin] = .init(total: total, stamp: try readStamp(&input))
                }
            }
            fields[name] = ReplicatedDocument.Field(
                value: value, stamp: stamp, startsAfterStamp: flags & 2 != 0, counts: counts)
        }
        var applied = AppliedKeys()
        if input.version >= 2 {
            for _ in 0..<(try input.count()) { applied.insert(try input.varint(), millis: try input.varint()) }
        }
        return ReplicatedDocument(id: id, fields: fields, deleted: deleted, cleared: cleared, applied: applied)
    }

    static func write(_ value: JSONValue, to out: inout BinaryWriter) {
        switch value {
        case .null: out.byte(0)
        case .bool(false): out.byte(1)
        case .bool(true): out.byte(2)
        case .number(let number):
            out.byte(3)
            out.fixed64(number.bitPattern)
        case .string(let string):
            out.byte(4)
            out.string(string)
        case .array(let items):
            out.byte(5)
            out.varint(UInt64(items.count))
            for item in items { write(item, to: &out) }
        case .object(let fields):
            out.byte(6)
            out.varint(UInt64(fields.count))
            for (key, item) in fields.sorted(by: { $0.key < $1.key }) {
                out.string(key)
                write(item, to: &out)
            }
        }
    }

    static func readValue(_ input: inout BinaryReader, depth: Int) throws(ReplicaDecodingError) -> JSONValue {
        guard depth < maxDepth else { throw ReplicaDecodingError("values nested deeper than \(maxDepth)") }
        switch try input.byte() {
        case 0: return .null
        case 1: return .bool(false)
        case 2: return .bool(true)
        case 3: return .number(Double(bitPattern: try input.fixed64()))
        case 4: return .string(try input.string())
        case 5:
            var items: [JSONValue] = []
            for _ in 0..<(try input.count()) { items.append(try readValue(&input, depth: depth + 1)) }
            return .array(items)
        case 6:
            var fields: [String: JSONValue] = [:]
            for _ in 0..<(try input.count()) {
                let key = try input.string()
                fields[key] = try readValue(&input, depth: depth + 1)
            }
            return .object(fields)
        case let tag: throw ReplicaDecodingError("unknown value tag \(tag)")
        }
    }
}
