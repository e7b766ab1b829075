import DistriCore
import DistriIdentity

/// What became of each send of this peer's, one record per grant: delivered (and how) or left in the
/// cloud's mailbox, and when (`sent.json` in the home; at most ``maxRecords``, the oldest dropped).
struct SentLedger {
    /// The most records kept.
    static let maxRecords = 4096

    /// One send's outcome.
    struct Record: Equatable {
        /// The grant's sequence the record is about (a later grant makes it stale).
        var sequence: UInt64
        /// `delivered` or `mailbox`.
        var outcome: String
        /// How it travelled (`directly to …`, `through the cloud's relay …`), when delivered.
        var path: String?
        /// When, in milliseconds since 1970.
        var at: UInt64
    }

    let file: String

    /// The records by grant id.
    func records() throws -> [String: Record] {
        guard SecureFiles.exists(file) else { return [:] }
        guard let object = (try? JSONParser.parse(try SecureFiles.read(file, private: true)))?.objectValue else {
            throw PeerError("\(file) is not a JSON object")
        }
        var records: [String: Record] = [:]
        for (id, value) in object.prefix(Self.maxRecords) {
            guard let fields = value.objectValue, let sequence = fields["sequence"]?.wholeNumberValue,
                let outcome = fields["outcome"]?.stringValue, let at = fields["at"]?.wholeNumberValue
            else { continue }
            records[id] = Record(sequence: sequence, outcome: outcome, path: fields["path"]?.stringValue, at: at)
        }
        return records
    }

    /// Records what `outcome` did with the send of `grant` (nothing for a queued send: the outbox
    /// holds those).
    func record(_ grant: ViewGrant, outcome: PeerSharing.SendOutcome, at: UInt64) throws {
        let record: Record
        switch outcome {
        case .delivered(let path):
            record = Record(sequence: grant.sequence, outcome: "delivered", path: path.description, at: at)
        case .leftInMailbox: record = Record(sequence: grant.sequence, outcome: "mailbox", path: nil, at: at)
        case .queued: return
        }
        try SecureFiles.withLock(file + ".lock") {
            var all = try records()
            all[grant.id] = record
            if all.count > Self.maxRecords, let oldest = all.min(by: { $0.value.at < $1.value.at })?.key {
                all[oldest] = nil
            }
            let object = all.mapValues { record -> JSONValue in
                var fields: [String: JSONValue] = [
                    "sequence": .number(Double(record.sequence)), "outcome": .string(record.outcome),
                    "at": .number(Double(record.at)),
                ]
                if let path = record.path { fields["path"] = .string(path) }
                return .object(fields)
            }
            try SecureFiles.write(Array((JSONValue.object(object).jsonText + "\n").utf8), to: file)
        }
    }
}
