import DistriCore
import NIOCore
import Testing

@testable import Distri

@Suite("DB requests and replies")
struct DatabaseReplyTests {
    /// The reply every plain write gets is written straight out; it must be the same JSON the general
    /// path builds from an object.
    @Test(arguments: [nil, "r000001", "0000000000abc", #"a "quoted" \ id"#, "ünïcödé", "line\nbreak"])
    func plainReplyMatchesTheObjectForm(id: String?) {
        let stamp = HLCTimestamp(millis: 1_764_000_000_123, counter: 7, node: "n6b6c67cf1acb0395~1ekf9a")
        for replicas in [1, 2, 3] {
            let receipt = WriteReceipt(id: id, stamp: stamp, replicas: replicas)
            let fast = DatabaseReply.write(receipt)
            let general = DatabaseReply.receiptObject(receipt, extra: [:])
            #expect(String(buffer: fast) == String(buffer: general))
        }
    }

    @Test("known key=value parameters are options; anything else, with or without '=', is positional")
    func parametersSplitIntoPositionalAndOptions() throws {
        let request = ServiceRequest(
            service: "UpdateDocument",
            params: [
                "ünï=cödé", "doc-1", "consistency=one", "mode=", "other=x", "session=\u{301}a", "=", "if={\"a\":1}",
            ],
            data: ByteBuffer())
        let parsed = try DatabaseRequest(request)
        #expect(parsed.positional == ["ünï=cödé", "doc-1", "other=x", "="])
        // A combining mark right after `=` belongs to the value (bytes, not grapheme clusters).
        #expect(parsed.options == ["consistency": "one", "mode": "", "session": "\u{301}a", "if": #"{"a":1}"#])
        #expect(try parsed.writeConsistency == .one)
    }
}
