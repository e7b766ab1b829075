import DistriCore
import Testing

@Suite struct DocumentQueryTests {
    let people: [(id: String, body: [String: JSONValue])] = [
        ("1", ["name": .string("ann"), "age": .number(31), "address": .object(["city": .string("Paris")])]),
        ("2", ["name": .string("bob"), "age": .number(25), "address": .object(["city": .string("Oslo")])]),
        ("3", ["name": .string("cy"), "age": .number(40), "tags": .array([.string("x")])]),
        ("4", ["name": .string("di"), "age": .number(31)]),
        ("5", ["name": .string("ed")]),
    ]

    private func ids(_ filter: JSONValue, sortBy: String? = nil) throws -> [String] {
        try DocumentQuery(filter: DocumentFilter(filter), sortBy: sortBy).run(over: people).documents.map(\.id)
    }

    @Test("exact match, also on nested fields by path or by object")
    func exact() throws {
        #expect(try ids(.object(["age": .number(31)])) == ["1", "4"])
        #expect(try ids(.object(["address.city": .string("Oslo")])) == ["2"])
        #expect(try ids(.object(["address": .object(["city": .string("Paris")])])) == ["1"])
    }

    @Test("range operators, $ne and $in")
    func operators() throws {
        #expect(try ids(.object(["age": .object(["$gt": .number(25), "$lte": .number(31)])])) == ["1", "4"])
        #expect(try ids(.object(["age": .object(["$gte": .number(40)])])) == ["3"])
        #expect(try ids(.object(["age": .object(["$lt": .number(30)])])) == ["2"])
        #expect(try ids(.object(["name": .object(["$ne": .string("ann")])])) == ["2", "3", "4", "5"])
        #expect(try ids(.object(["name": .object(["$in": .array([.string("bob"), .string("ed")])])])) == ["2", "5"])
    }

    @Test("bad filters are refused with a clear error")
    func badFilters() {
        #expect(throws: QueryError.self) { try DocumentFilter(.array([])) }
        #expect(throws: QueryError("unknown operator $regex on name")) {
            try DocumentFilter(.object(["name": .object(["$regex": .string("a")])]))
        }
        #expect(throws: QueryError.self) { try DocumentFilter(.object(["age": .object(["$in": .number(1)])])) }
    }

    @Test("sorting with a limit and a cursor pages through every match once")
    func pagination() throws {
        var query = DocumentQuery(sortBy: "age", limit: 2)
        var seen: [String] = []
        for _ in 0..<10 {
            let page = query.run(over: people)
            seen += page.documents.map(\.id)
            guard let next = page.next else { break }
            query.after = next
        }
        #expect(seen == ["5", "2", "1", "4", "3"], "missing age first, then by age, ties by id")
        var descending = DocumentQuery(sortBy: "age", descending: true, limit: 3)
        let first = descending.run(over: people)
        #expect(first.documents.map(\.id) == ["3", "4", "1"])
        descending.after = first.next
        #expect(descending.run(over: people).documents.map(\.id) == ["2", "5"])
    }
}
