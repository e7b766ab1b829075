import Foundation
import Testing

@testable import DistriCore

@Suite struct JSONParserTests {
    @Test("parses every kind of value, nested, with escapes and surrounding whitespace")
    func parsesValues() throws {
        let text = #"""
             {"a": [1, -2.5, 3e2, 0, -0.0, 1E-2], "b": {"c": null, "d": true, "e": false},
              "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 plain", "empty": {}, "none": []}
            """#
        let value = try JSONParser.parse(text)
        let expected: JSONValue = .object([
            "a": .array([.number(1), .number(-2.5), .number(300), .number(0), .number(-0.0), .number(0.01)]),
            "b": .object(["c": .null, "d": .bool(true), "e": .bool(false)]),
            "s": .string("q\"\\/\u{08}\u{0C}\n\r\t\u{e9}\u{1F600} plain"),
            "empty": .object([:]),
            "none": .array([]),
        ])
        #expect(value == expected)
        #expect(try JSONParser.parse("  \"é\"\n") == .string("é"))
        #expect(try JSONParser.parse("12") == .number(12))
    }

    @Test(
        "rejects what is not JSON, with the offset",
        arguments: [
            "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "1.", ".5", "-", "1e",
            "+1", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{01}\"",
            "1e400", "NaN", "[1]x", "{\"a\":1,\"a\":2}", "'a'",
        ])
    func rejectsInvalid(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
    }

    @Test("rejects invalid UTF-8 and nesting deeper than the limit")
    func rejectsBytesAndDepth() throws {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
        let deep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: 65)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSONParser.parse(fine) }
    }

    @Test("agrees with Foundation's decoder on random documents, and reads back its own text")
    func agreesWithFoundation() throws {
        var random = SplitMix64(seed: 7)
        for _ in 0..<300 {
            let value = Self.randomValue(&random, depth: 0)
            let text = value.jsonText
            let ours = try JSONParser.parse(text)
            let theirs = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(ours == theirs, "\(text)")
            #expect(ours == value)
        }
    }

    static func randomValue(_ random: inout SplitMix64, depth: Int) -> JSONValue {
        switch random.next() % (depth > 3 ? 4 : 6) {
        case 0: return .null
        case 1: return .bool(random.next() % 2 == 0)
        case 2:
            let integer = Double(Int64(bitPattern: random.next()) % 1_000_000)
            return .number(random.next() % 2 == 0 ? integer : integer / 64)
        case 3:
            let alphabet = Array("abc xyz\"\\\n\té€😀\u{01}")
            return .string(
                String((0..<random.next() % 8).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }))
        case 4: return .array((0..<random.next() % 4).map { _ in randomValue(&random, depth: depth + 1) })
        default:
            var fields: [String: JSONValue] = [:]
            for index in 0..<random.next() % 4 { fields["k\(index)"] = randomValue(&random, depth: depth + 1) }
            return .object(fields)
        }
    }
}
