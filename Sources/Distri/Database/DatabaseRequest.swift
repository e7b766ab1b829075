import DistriCore
import Foundation
import NIOCore
import NIOFoundationCompat

/// Reads a DB service request: positional parameters first, then `key=value` options
/// (`consistency=one|majority|all`, `read=local|majority`, `session=<token>`, `mode=merge|replace`,
/// `if=<JSON filter>`), and the JSON body.
struct DatabaseRequest {
    let request: ServiceRequest
    let positional: [String]
    let options: [String: String]

    static let optionNames: Set<String> = ["consistency", "read", "session", "mode", "if"]

    init(_ request: ServiceRequest) throws(ServiceError) {
        self.request = request
        var positional: [String] = []
        var options: [String: String] = [:]
        for param in request.params {
            // Searched as bytes: a search by Character walks grapheme clusters.
            if let equals = param.utf8.firstIndex(of: UInt8(ascii: "=")) {
                let name = String(param[..<equals])
                if Self.optionNames.contains(name) {
                    options[name] = String(param[param.utf8.index(after: equals)...])
                    continue
                }
            }
            positional.append(param)
        }
        self.positional = positional
        self.options = options
    }

    func argument(_ index: Int, _ name: String) throws(ServiceError) -> String {
        guard positional.indices.contains(index), !positional[index].isEmpty else {
            throw .badParams("\(request.service) needs parameter \(index + 1) (\(name))")
        }
        return positional[index]
    }

    var writeConsistency: WriteConsistency {
        get throws(ServiceError) {
            guard let text = options["consistency"] else { return .majority }
            guard let level = WriteConsistency(rawValue: text) else {
                throw .badParams("consistency is one, majority or all, not '\(text)'")
            }
            return level
        }
    }

    var readConsistency: ReadConsistency {
        get throws(ServiceError) {
            guard let text = options["read"] else { return .local }
            guard let level = ReadConsistency(rawValue: text) else {
                throw .badParams("read is local, majority or all, not '\(text)'")
            }
            return level
        }
    }

    var session: SessionToken? {
        get throws(ServiceError) {
            guard let text = options["session"], !text.isEmpty else { return nil }
            guard let token = SessionToken(text) else { throw .badParams("malformed session token '\(text)'") }
            return token
        }
    }

    /// The body as JSON; nil when empty.
    func body(limit: Int) throws(ServiceError) -> JSONValue? {
        guard request.data.readableBytes > 0 else { return nil }
        guard request.data.readableBytes <= limit else {
            throw ServiceError(.tooLarge, "a document of \(request.data.readableBytes) bytes exceeds \(limit)")
        }
        return try Self.parse(request.data)
    }

    /// The body as a JSON object (required).
    func object(limit: Int) throws(ServiceError) -> [String: JSONValue] {
        guard let value = try body(limit: limit) else { throw .badParams("\(request.service) needs a JSON object") }
        guard case .object(let fields) = value else { throw .badParams("the body must be a JSON object") }
        return fields
    }

    static func parse(_ buffer: ByteBuffer) throws(ServiceError) -> JSONValue {
        let result = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(JSONParser.Failure) -> JSONValue in try JSONParser.parse(raw) }
        }
        switch result {
        case .success(let value): return value
        case .failure(let failure): throw .badParams("invalid JSON: \(failure)")
        }
    }

    static func parse(_ text: String) throws(ServiceError) -> JSONValue {
        try parse(ByteBuffer(string: text))
    }

    /// A filter from JSON text or value.
    static func filter(_ value: JSONValue?) throws(ServiceError) -> DocumentFilter {
        guard let value else { return .all }
        do {
            return try DocumentFilter(value)
        } catch {
            throw .badParams("bad filter: \(error)")
        }
    }
}

/// JSON replies.
enum DatabaseReply {
    static func json(_ value: JSONValue) -> ByteBuffer {
        ByteBuffer(string: value.jsonText)
    }

    static func write(_ receipt: WriteReceipt, extra: [String: JSONValue] = [:]) -> ByteBuffer {
        guard extra.isEmpty, receipt.document == nil, !receipt.replayed else {
            return receiptObject(receipt, extra: extra)
        }
        // Every plain write answers this: written straight out, keys in the order `jsonText` sorts them.
        var text = "{"
        if let id = receipt.id {
            text += #""id":"#
            JSONValue.quote(id, into: &text)
            text += ","
        }
        text += #""replicas":"#
        text += String(receipt.replicas)
        text += #","session":"#
        JSONValue.quote(receipt.stamp.description, into: &text)
        text += "}"
        return ByteBuffer(string: text)
    }

    /// A write's reply built as a JSON object: `extra` fields and the document of a conditional update.
    static func receiptObject(_ receipt: WriteReceipt, extra: [String: JSONValue]) -> ByteBuffer {
        var fields = extra
        if let id = receipt.id { fields["id"] = .string(id) }
        if receipt.replayed { fields["replayed"] = true }
        fields["session"] = .string(receipt.stamp.description)
        fields["replicas"] = .number(Double(receipt.replicas))
        if let document = receipt.document { fields["document"] = .object(document) }
        return json(.object(fields))
    }

    /// A document as clients see it: its fields and its id under `_id`.
    static func document(id: String, body: [String: JSONValue]) -> JSONValue {
        var fields = body
        fields["_id"] = .string(id)
        return .object(fields)
    }

    /// Cursors travel as base64 of `{"id":…,"v":…}`.
    static func cursor(_ cursor: QueryCursor) -> String {
        var fields: [String: JSONValue] = ["id": .string(cursor.id)]
        if let value = cursor.sortValue { fields["v"] = value }
        return Data(JSONValue.object(fields).jsonText.utf8).base64EncodedString()
    }

    static func parseCursor(_ text: String) throws(ServiceError) -> QueryCursor {
        guard let data = Data(base64Encoded: text), let value = try? DatabaseRequest.parse(ByteBuffer(data: data)),
            case .object(let fields) = value, case .string(let id)? = fields["id"]
        else { throw .badParams("malformed cursor") }
        return QueryCursor(sortValue: fields["v"], id: id)
    }
}
