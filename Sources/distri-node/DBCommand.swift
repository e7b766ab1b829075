import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import Foundation

/// `distri-node db`: the cloud's replicated document DB from the command line.
struct DBCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Manage collections and add, update, delete, read and count documents in the cloud's DB.",
        discussion: """
            Every node holds a replica; each command asks the next node of --cloud in turn. \
            JSON arguments are inline text, @FILE to read a file, or - to read standard input. \
            Writes wait for --consistency replicas (the nodes' default: majority); \
            reads and counts consult --read replicas (the nodes' default: local). \
            --json prints the node's reply. \
            Exit status: 0 done, 1 error, 3 the --if condition of an update did not hold.
            """,
        subcommands: [
            Create.self, Drop.self, List.self, Add.self, Update.self, Delete.self, Read.self, Count.self,
        ])

    /// `db create NAME`.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a collection.")

        @OptionGroup var collection: CollectionArguments

        func run() async throws { try await collection.write("CreateCollection", done: "created") }
    }

    /// `db drop NAME`.
    struct Drop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Drop a collection and its documents.")

        @OptionGroup var collection: CollectionArguments

        func run() async throws { try await collection.write("DropCollection", done: "dropped") }
    }

    /// What `db create` and `db drop` take: one collection's name, the one write they make to it.
    struct CollectionArguments: ParsableArguments {
        @Argument(help: "Collection name.")
        var name: String

        @OptionGroup var options: DBOptions

        func validate() throws { try DBOptions.checkPositional(name, "collection name") }

        /// Calls `service` on the collection and says it is `done` ("created", "dropped").
        func write(_ service: String, done: String) async throws {
            try await options.connect { db in
                let reply = try await db.call(service, [name], writes: true)
                db.print(reply) { "\(done) collection \(name) (held by \(reply.replicas) replicas)" }
            }
        }
    }

    /// `db list`: collections, with a `Count` of each.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the collections and their document counts.",
            discussion: "--json prints {\"collections\": [...], \"documents\": {name: count}}.")

        @OptionGroup var options: DBOptions

        func run() async throws {
            try await options.connect { db in
                let reply = try await db.call("ListCollections", [], reads: true)
                let names = reply.object["collections"]?.arrayValue?.compactMap(\.stringValue) ?? []
                let counts = try await withThrowingTaskGroup(of: (String, Int).self) { group in
                    for name in names {
                        group.addTask {
                            let count = try await db.call("Count", [name], reads: true)
                            return (name, Int(count.object["count"]?.wholeNumberValue ?? 0))
                        }
                    }
                    var counts: [String: Int] = [:]
                    for try await (name, count) in group { counts[name] = count }
                    return counts
                }
                if options.json {
                    let value = JSONValue.object([
                        "collections": .array(names.map(JSONValue.string)),
                        "documents": .object(counts.mapValues { .number(Double($0)) }),
                    ])
                    Swift.print(value.outputText)
                } else if names.isEmpty {
                    Swift.print("no collections")
                } else {
                    Swift.print(
                        TextTable.render(
                            headers: ["collection", "documents"], rows: names.map { [$0, "\(counts[$0] ?? 0)"] }))
                }
            }
        }
    }

    /// `db add COLLECTION JSON`.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a document and print its id.",
            discussion: "The document's \"_id\" (a string) is its id when given; otherwise the node picks one.")

        @Argument(help: "Collection name.")
        var collection: String

        @Argument(help: ArgumentHelp("The document: a JSON object, @FILE or - (stdin).", valueName: "json"))
        var document: String

        @OptionGroup var options: DBOptions

        func validate() throws { try DBOptions.checkPositional(collection, "collection name") }

        func run() async throws {
            let body = try JSONArgument.object(document, "the document")
            try await options.connect { db in
                let reply = try await db.call("AddDocument", [collection], body: .object(body), writes: true)
                db.print(reply) { reply.object["id"]?.stringValue ?? "" }
            }
        }
    }

    /// `db update COLLECTION ID JSON [--replace] [--if FILTER]`.
    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set fields of a document, add to numeric fields with $inc, or replace it.",
            discussion: """
                JSON sets top-level fields, e.g. '{"name": "Ada", "$inc": {"visits": 1}}'. \
                With --if the update applies only if the document, as a majority of replicas hold it, \
                matches the filter (one compare-and-set round); it prints the document as written, \
                and exits with status 3 when the condition does not hold.
                """)

        @Argument(help: "Collection name.")
        var collection: String

        @Argument(help: "Document id.")
        var id: String

        @Argument(help: ArgumentHelp("Fields to set, and $inc: a JSON object, @FILE or - (stdin).", valueName: "json"))
        var fields: String

        @Flag(name: .long, help: "Replace the whole document with the given fields instead of merging them.")
        var replace = false

        @Option(
            name: .customLong("if"),
            help: ArgumentHelp("Apply only if the document matches this JSON filter.", valueName: "filter"))
        var condition: String?

        @OptionGroup var options: DBOptions

        func validate() throws {
            try DBOptions.checkPositional(collection, "collection name")
            try DBOptions.checkPositional(id, "document id")
        }

        func run() async throws {
            let body = try JSONArgument.object(fields, "the update")
            if let increments = body["$inc"] {
                guard let amounts = increments.objectValue, amounts.values.allSatisfy({ $0.numberValue != nil }) else {
                    throw JSONArgument.Invalid("$inc needs an object of numbers, e.g. {\"$inc\": {\"visits\": 1}}")
                }
            }
            var params = [collection, id]
            if replace { params.append("mode=replace") }
            if let condition { params.append("if=\(try JSONArgument.filter(condition, "--if").jsonText)") }
            try await options.connect(conditional: condition != nil) { db in
                let reply = try await db.call("UpdateDocument", params, body: .object(body), writes: true)
                db.print(reply) {
                    var text = "updated \(id) (held by \(reply.replicas) replicas)"
                    if let document = reply.object["document"] { text += "\n\(document.outputText)" }
                    return text
                }
            }
        }
    }

    /// `db delete COLLECTION [ID] [--where FILTER]`.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a document by id, or every document matching a filter.",
            discussion: "--where '{}' deletes every document of the collection.")

        @Argument(help: "Collection name.")
        var collection: String

        @Argument(help: "Document id.")
        var id: String?

        @Option(
            name: .customLong("where"),
            help: ArgumentHelp("Delete the documents matching this JSON filter.", valueName: "filter"))
        var filter: String?

        @OptionGroup var options: DBOptions

        func validate() throws {
            try DBOptions.checkPositional(collection, "collection name")
            if let id { try DBOptions.checkPositional(id, "document id") }
            if (id == nil) == (filter == nil) { throw ValidationError("give either a document id or --where FILTER") }
        }

        func run() async throws {
            let body = try filter.map { try JSONArgument.filter($0, "--where") }
            try await options.connect { db in
                let reply = try await db.call(
                    "DeleteDocument", [collection] + (id.map { [$0] } ?? []), body: body, writes: true, reads: true)
                db.print(reply) {
                    let deleted = Int(reply.object["deleted"]?.wholeNumberValue ?? 0)
                    return "deleted \(deleted) document\(deleted == 1 ? "" : "s")"
                }
            }
        }
    }

    /// `db read COLLECTION [--where F] [--sort FIELD] [--desc] [--limit N] [--after CURSOR]`.
    struct Read: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a page of documents: a table, JSON lines (--lines) or the reply (--json).",
            discussion: "The last line names the cursor of the next page, if there is one; pass it to --after.")

        @Argument(help: "Collection name.")
        var collection: String

        @Option(
            name: .customLong("where"),
            help: ArgumentHelp("Only documents matching this JSON filter.", valueName: "filter"))
        var filter: String?

        @Option(
            name: .long, help: ArgumentHelp("Sort by this field (a dotted path); default the id.", valueName: "field"))
        var sort: String?

        @Flag(name: .customLong("desc"), help: "Sort in descending order.")
        var descending = false

        @Option(name: .long, help: "Most documents to return.")
        var limit: Int?

        @Option(
            name: .long, help: ArgumentHelp("Continue after this cursor (from the previous page).", valueName: "cursor")
        )
        var after: String?

        @Flag(name: .long, help: "Print one JSON document per line; the next cursor goes to standard error.")
        var lines = false

        @OptionGroup var options: DBOptions

        func validate() throws {
            try DBOptions.checkPositional(collection, "collection name")
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
            if lines && options.json { throw ValidationError("--lines and --json exclude each other") }
        }

        func run() async throws {
            var query: [String: JSONValue] = [:]
            if let filter { query["filter"] = try JSONArgument.filter(filter, "--where") }
            if let sort { query["sort"] = .string(sort) }
            if descending { query["order"] = .string("desc") }
            if let limit { query["limit"] = .number(Double(limit)) }
            if let after { query["after"] = .string(after) }
            try await options.connect { db in
                let reply = try await db.call("ReadCollection", [collection], body: .object(query), reads: true)
                if options.json {
                    Swift.print(JSONValue.object(reply.object).outputText)
                    return
                }
                let documents = (reply.object["documents"]?.arrayValue ?? []).compactMap(\.objectValue)
                let next = reply.object["next"]?.stringValue
                if lines {
                    for document in documents { Swift.print(JSONValue.object(document).jsonText) }
                    if let next { FileHandle.standardError.write(Data("next: \(next)\n".utf8)) }
                    return
                }
                if documents.isEmpty {
                    Swift.print("no documents")
                } else {
                    Swift.print(DocumentTable.render(documents))
                    Swift.print("\(documents.count) document\(documents.count == 1 ? "" : "s")")
                }
                if let next { Swift.print("next page: --after \(next)") }
            }
        }
    }

    /// `db count COLLECTION [--where FILTER]`.
    struct Count: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count the documents (matching a filter).")

        @Argument(help: "Collection name.")
        var collection: String

        @Option(
            name: .customLong("where"),
            help: ArgumentHelp("Only documents matching this JSON filter.", valueName: "filter"))
        var filter: String?

        @OptionGroup var options: DBOptions

        func validate() throws { try DBOptions.checkPositional(collection, "collection name") }

        func run() async throws {
            let body = try filter.map { try JSONArgument.filter($0, "--where") }
            try await options.connect { db in
                let reply = try await db.call("Count", [collection], body: body, reads: true)
                db.print(reply) { "\(Int(reply.object["count"]?.wholeNumberValue ?? 0))" }
            }
        }
    }
}

/// Options every `db` command takes.
struct DBOptions: ParsableArguments {
    @OptionGroup var cloud: CloudOptions

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @Option(name: .long, help: "Replicas a write waits for (the nodes' default: majority).")
    var consistency: WriteConsistency?

    @Option(name: .long, help: "Replicas a read consults (the nodes' default: local).")
    var read: ReadConsistency?

    /// The DB services read a parameter `consistency=…`, `read=…`, `session=…`, `mode=…` or `if=…` as
    /// an option wherever it stands, so such a name or id cannot be sent as one.
    static func checkPositional(_ value: String, _ what: String) throws {
        if value.isEmpty { throw ValidationError("the \(what) must not be empty") }
        if let equals = value.firstIndex(of: "="),
            ["consistency", "read", "session", "mode", "if"].contains(value[..<equals])
        {
            throw ValidationError("the \(what) '\(value)' would be read as an option by the DB services")
        }
    }

    /// Runs `body` with a client of the cloud, and shuts the client down afterwards. With
    /// `conditional`, a `conflict` answer (the condition did not hold) ends the process with status 3.
    func connect(conditional: Bool = false, _ body: (DBConnection) async throws -> Void) async throws {
        let client = try cloud.client()
        do {
            try await body(DBConnection(client: client, options: self))
            await client.shutdown()
        } catch let error as ClientError where conditional && error.remoteCode == .conflict {
            await client.shutdown()
            FileHandle.standardError.write(Data("condition not met: \(error.message)\n".utf8))
            throw ExitCode(3)
        } catch {
            await client.shutdown()
            throw (try? cloud.location())?.explain(error) ?? error
        }
    }
}

/// One client of the cloud, calling the DB services by name with the options of the command line.
struct DBConnection: Sendable {
    let client: Client
    let json: Bool
    let consistency: WriteConsistency?
    let read: ReadConsistency?

    init(client: Client, options: DBOptions) {
        self.client = client
        json = options.json
        consistency = options.consistency
        read = options.read
    }

    /// A DB service's reply: its text, and the JSON object it holds.
    struct Reply: Sendable {
        var text: String
        var object: [String: JSONValue]

        var replicas: Int { Int(object["replicas"]?.wholeNumberValue ?? 0) }
    }

    struct BadReply: Error, CustomStringConvertible {
        var description: String
    }

    /// Calls `service`; `writes` adds `consistency=`, `reads` adds `read=` when the command line set them.
    func call(
        _ service: String, _ params: [String], body: JSONValue? = nil, writes: Bool = false, reads: Bool = false
    ) async throws -> Reply {
        var params = params
        if writes, let consistency { params.append("consistency=\(consistency.rawValue)") }
        if reads, let read { params.append("read=\(read.rawValue)") }
        let bytes = try await client.send(Array((body?.jsonText ?? "").utf8), service: service, params: params)
        let text = String(decoding: bytes, as: UTF8.self)
        guard let object = (try? JSONParser.parse(bytes))?.objectValue else {
            throw BadReply(
                description: "\(service) answered with something other than a JSON object: \(text.prefix(200))")
        }
        return Reply(text: text, object: object)
    }

    /// Prints the reply itself with --json, else `human`.
    func print(_ reply: Reply, _ human: () -> String) {
        Swift.print(json ? JSONValue.object(reply.object).outputText : human())
    }
}

/// A JSON argument of the command line: inline text, `@FILE`, or `-` for standard input. Checked
/// before anything is sent.
enum JSONArgument {
    struct Invalid: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func value(_ argument: String, _ what: String) throws -> JSONValue {
        let data: Data
        var source = ""
        if argument == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
            source = " (from standard input)"
        } else if argument.hasPrefix("@") {
            let path = String(argument.dropFirst())
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw Invalid("cannot read \(what) from \(path): no such readable file")
            }
            data = contents
            source = " (from \(path))"
        } else {
            data = Data(argument.utf8)
        }
        do {
            return try JSONParser.parse(data)
        } catch {
            throw Invalid("\(what) is not valid JSON\(source): \(error)")
        }
    }

    /// A JSON object.
    static func object(_ argument: String, _ what: String) throws -> [String: JSONValue] {
        guard let fields = try value(argument, what).objectValue else {
            throw Invalid("\(what) must be a JSON object ({...})")
        }
        return fields
    }

    /// A filter, checked as the nodes will parse it.
    static func filter(_ argument: String, _ what: String) throws -> JSONValue {
        let json = try value(argument, what)
        do {
            _ = try DocumentFilter(json)
        } catch {
            throw Invalid("\(what) is not a valid filter: \(error)")
        }
        return json
    }
}

/// Documents as a table: the id first, then every top-level field.
enum DocumentTable {
    static func render(_ documents: [[String: JSONValue]], width: Int = 48) -> String {
        let fields = Set(documents.flatMap(\.keys)).subtracting(["_id"]).sorted()
        let rows = documents.map { document in
            [cell(document["_id"], width)] + fields.map { cell(document[$0], width) }
        }
        return TextTable.render(headers: ["_id"] + fields, rows: rows)
    }

    /// Strings bare, other values as compact JSON, missing fields as `-`; long cells cut.
    private static func cell(_ value: JSONValue?, _ width: Int) -> String {
        guard let value else { return "-" }
        let text = value.stringValue ?? value.jsonText
        return text.count > width ? String(text.prefix(width - 1)) + "…" : text
    }
}
