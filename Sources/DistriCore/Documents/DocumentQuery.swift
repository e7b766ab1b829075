/// Why a filter or query was refused.
public struct QueryError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    /// An error that says `description`.
    public init(_ description: String) { self.description = description }
}

/// A filter over documents, parsed from JSON: `{"field": value}` matches equal values (dotted paths
/// reach nested fields, as does a nested object), and `{"field": {"$gt": 3}}` applies operators:
/// `$gt $gte $lt $lte $ne $in $eq`. All conditions must hold.
public struct DocumentFilter: Hashable, Sendable {
    /// A condition on one field's value.
    public enum Condition: Hashable, Sendable {
        /// The value equals this one.
        case equals(JSONValue)
        /// The value differs from this one.
        case notEquals(JSONValue)
        /// The value is greater than this one (or equal, with `orEqual`).
        case greater(JSONValue, orEqual: Bool)
        /// The value is less than this one (or equal, with `orEqual`).
        case less(JSONValue, orEqual: Bool)
        /// The value is one of these.
        case within([JSONValue])
    }

    /// Conditions by dotted field path.
    public private(set) var conditions: [(path: String, condition: Condition)]

    public static func == (a: DocumentFilter, b: DocumentFilter) -> Bool {
        a.conditions.map(\.path) == b.conditions.map(\.path)
            && a.conditions.map(\.condition) == b.conditions.map(\.condition)
    }

    public func hash(into hasher: inout Hasher) {
        for (path, condition) in conditions {
            hasher.combine(path)
            hasher.combine(condition)
        }
    }

    /// Matches every document.
    public static let all = DocumentFilter(conditions: [])

    private init(conditions: [(path: String, condition: Condition)]) {
        self.conditions = conditions
    }

    /// Parses a filter object; throws a ``QueryError`` naming what is wrong.
    public init(_ json: JSONValue) throws(QueryError) {
        guard case .object(let fields) = json else { throw QueryError("a filter must be a JSON object") }
        var conditions: [(path: String, condition: Condition)] = []
        try Self.parse(fields, prefix: "", into: &conditions)
        self.conditions = conditions.sorted { $0.path < $1.path }
    }

    private static func parse(
        _ fields: [String: JSONValue], prefix: String, into conditions: inout [(path: String, condition: Condition)]
    ) throws(QueryError) {
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            guard !key.hasPrefix("$") else { throw QueryError("operator \(key) needs a field before it") }
            let path = prefix.isEmpty ? key : "\(prefix).\(key)"
            guard case .object(let inner) = value, let first = inner.keys.first else {
                conditions.append((path, .equals(value)))
                continue
            }
            if !first.hasPrefix("$") {
                try parse(inner, prefix: path, into: &conditions)
                continue
            }
            for (op, operand) in inner.sorted(by: { $0.key < $1.key }) {
                switch op {
                case "$eq": conditions.append((path, .equals(operand)))
                case "$ne": conditions.append((path, .notEquals(operand)))
                case "$gt": conditions.append((path, .greater(operand, orEqual: false)))
                case "$gte": conditions.append((path, .greater(operand, orEqual: true)))
                case "$lt": conditions.append((path, .less(operand, orEqual: false)))
                case "$lte": conditions.append((path, .less(operand, orEqual: true)))
                case "$in":
                    guard case .array(let options) = operand else { throw QueryError("$in on \(path) needs an array") }
                    conditions.append((path, .within(options)))
                default: throw QueryError("unknown operator \(op) on \(path)")
                }
            }
        }
    }

    /// The only document ids the filter can match, when it pins `_id` to strings (`{"_id": "a"}` or
    /// `{"_id": {"$in": [...]}}`): reads then look these up instead of scanning the collection.
    public var pinnedIDs: [String]? {
        var pinned: [String]?
        for (path, condition) in conditions where path == "_id" {
            let ids: [String]
            switch condition {
            case .equals(.string(let id)): ids = [id]
            case .equals: return []
            case .within(let options):
                ids = options.compactMap { if case .string(let id) = $0 { id } else { nil } }
            default: continue
            }
            pinned = pinned.map { current in current.filter(ids.contains) } ?? ids
        }
        return pinned
    }

    /// True when `document` meets every condition.
    public func matches(_ document: [String: JSONValue]) -> Bool {
        let root = JSONValue.object(document)
        for (path, condition) in conditions {
            let value = root[path: path]
            switch condition {
            case .equals(let expected): if value != expected { return false }
            case .notEquals(let unexpected): if value == unexpected { return false }
            case .greater(let bound, let orEqual):
                guard let order = value?.compare(bound), order > 0 || (orEqual && order == 0) else { return false }
            case .less(let bound, let orEqual):
                guard let order = value?.compare(bound), order < 0 || (orEqual && order == 0) else { return false }
            case .within(let options): if !options.contains(where: { $0 == value }) { return false }
            }
        }
        return true
    }
}

/// Where the previous page ended: the sort value and id of its last document.
public struct QueryCursor: Hashable, Sendable, Codable {
    /// The sort value of the last document, nil when sorting by id.
    public var sortValue: JSONValue?
    /// The id of the last document.
    public var id: String

    /// The cursor after the document `id` with `sortValue`.
    public init(sortValue: JSONValue?, id: String) {
        self.sortValue = sortValue
        self.id = id
    }
}

/// A read of a collection: filter, order, page size and where to continue.
public struct DocumentQuery: Hashable, Sendable {
    /// Which documents match.
    public var filter: DocumentFilter
    /// Dotted path to sort by; nil sorts by id.
    public var sortBy: String?
    /// Whether the order is descending.
    public var descending: Bool
    /// Most documents per page; nil for all.
    public var limit: Int?
    /// Where to continue: after this document; nil starts at the beginning.
    public var after: QueryCursor?

    /// A query; every part defaults to "all, by id, ascending".
    public init(
        filter: DocumentFilter = .all, sortBy: String? = nil, descending: Bool = false, limit: Int? = nil,
        after: QueryCursor? = nil
    ) {
        self.filter = filter
        self.sortBy = sortBy
        self.descending = descending
        self.limit = limit
        self.after = after
    }

    /// One page of results.
    public struct Page: Hashable, Sendable {
        /// The documents of this page, in order.
        public var documents: [(id: String, body: [String: JSONValue])]
        /// Where the next page starts; nil on the last page.
        public var next: QueryCursor?

        public static func == (a: Page, b: Page) -> Bool {
            a.documents.map(\.id) == b.documents.map(\.id) && a.documents.map(\.body) == b.documents.map(\.body)
                && a.next == b.next
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(documents.map(\.id))
            hasher.combine(next)
        }
    }

    /// Runs the query over `(id, body)` pairs. Ties in the sort value are ordered by id, so pages
    /// never skip or repeat a document.
    public func run(over documents: some Sequence<(id: String, body: [String: JSONValue])>) -> Page {
        let matching = documents.filter { filter.matches($0.body) }
        let keyed = matching.map { document in
            (
                key: QueryCursor(
                    sortValue: sortBy.flatMap { JSONValue.object(document.body)[path: $0] }, id: document.id),
                document: document
            )
        }
        let ordered = keyed.sorted { a, b in
            descending ? Self.precedes(b.key, a.key) : Self.precedes(a.key, b.key)
        }
        var startIndex = 0
        if let after {
            startIndex =
                ordered.firstIndex { descending ? Self.precedes($0.key, after) : Self.precedes(after, $0.key) }
                ?? ordered.count
        }
        let remaining = ordered[startIndex...]
        let page = limit.map { Array(remaining.prefix($0)) } ?? Array(remaining)
        let more = page.count < remaining.count
        return Page(documents: page.map(\.document), next: more ? page.last?.key : nil)
    }

    /// Total order of cursor keys: missing values first, then by kind and value, then by id.
    static func precedes(_ a: QueryCursor, _ b: QueryCursor) -> Bool {
        switch (a.sortValue, b.sortValue) {
        case (nil, nil): return a.id < b.id
        case (nil, _): return true
        case (_, nil): return false
        case (let x?, let y?):
            if let order = x.compare(y), order != 0 { return order < 0 }
            if x.kindRank != y.kindRank { return x.kindRank < y.kindRank }
            return a.id < b.id
        }
    }
}
