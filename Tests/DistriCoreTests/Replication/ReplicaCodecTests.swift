import Testing

@testable import DistriCore

/// Round trips and hostile input for the binary encoding of replication messages and log entries.
@Suite struct ReplicaCodecTests {
    /// One kind of encoded value: how to make a random one, encode it and decode it.
    struct Kind: Sendable, CustomStringConvertible {
        let description: String
        let encoded: @Sendable (inout SplitMix64, Bool) -> [UInt8]
        /// Decodes and re-encodes (so values with NaN compare by their bytes).
        let reencoded: @Sendable ([UInt8]) throws(ReplicaDecodingError) -> [UInt8]
    }

    static let kinds: [Kind] = [
        Kind(
            description: "request", encoded: { ReplicaCodec.encode($0.replicaRequest(finite: $1)) },
            reencoded: { bytes throws(ReplicaDecodingError) in
                ReplicaCodec.encode(try ReplicaCodec.decodeRequest(bytes))
            }),
        Kind(
            description: "response", encoded: { ReplicaCodec.encode($0.replicaResponse(finite: $1)) },
            reencoded: { bytes throws(ReplicaDecodingError) in
                ReplicaCodec.encode(try ReplicaCodec.decodeResponse(bytes))
            }),
        Kind(
            description: "log entry", encoded: { ReplicaCodec.encode($0.persistedEntry(finite: $1)) },
            reencoded: { bytes throws(ReplicaDecodingError) in ReplicaCodec.encode(try ReplicaCodec.decodeEntry(bytes))
            }),
    ]

    @Test("random requests, responses and log entries decode to equal values")
    func roundTrip() throws {
        var random = SplitMix64(seed: 1)
        for _ in 0..<1_000 {
            let request = random.replicaRequest()
            #expect(try ReplicaCodec.decodeRequest(ReplicaCodec.encode(request)) == request)
            let response = random.replicaResponse()
            #expect(try ReplicaCodec.decodeResponse(ReplicaCodec.encode(response)) == response)
            let entry = random.persistedEntry()
            #expect(try ReplicaCodec.decodeEntry(ReplicaCodec.encode(entry)) == entry)
        }
    }

    @Test("NaN, infinities and -0 survive a round trip bit for bit", arguments: kinds)
    func nonFiniteNumbers(kind: Kind) throws {
        var random = SplitMix64(seed: 2)
        for _ in 0..<500 {
            let bytes = kind.encoded(&random, false)
            #expect(try kind.reencoded(bytes) == bytes)
        }
    }

    @Test("every truncation throws", arguments: kinds)
    func truncated(kind: Kind) {
        var random = SplitMix64(seed: 3)
        for _ in 0..<200 {
            let bytes = kind.encoded(&random, true)
            for length in 0..<bytes.count {
                #expect(throws: ReplicaDecodingError.self, "\(kind) cut to \(length) of \(bytes.count) bytes") {
                    _ = try kind.reencoded(Array(bytes.prefix(length)))
                }
            }
        }
    }

    @Test("trailing bytes throw", arguments: kinds)
    func trailing(kind: Kind) {
        var random = SplitMix64(seed: 4)
        for _ in 0..<200 {
            let bytes = kind.encoded(&random, true) + [UInt8(random.below(256))]
            #expect(throws: ReplicaDecodingError.self) { _ = try kind.reencoded(bytes) }
        }
    }

    @Test("unknown versions and tags throw")
    func badTags() throws {
        let push = ReplicaCodec.encode(ReplicaRequest.push([.document(collection: "c", ReplicatedDocument(id: "d"))]))
        let cases: [(String, [UInt8], @Sendable ([UInt8]) throws(ReplicaDecodingError) -> Void)] = [
            (
                "request version", [2, 1, 0],
                { bytes throws(ReplicaDecodingError) in _ = try ReplicaCodec.decodeRequest(bytes) }
            ),
            (
                "request tag 0", [1, 0],
                { bytes throws(ReplicaDecodingError) in _ = try ReplicaCodec.decodeRequest(bytes) }
            ),
            (
                "request tag 6", [1, 6],
                { bytes throws(ReplicaDecodingError) in _ = try ReplicaCodec.decodeRequest(bytes) }
            ),
            (
                "change tag", [1, 1, 1, 3],
                { bytes throws(ReplicaDecodingError) in _ = try ReplicaCodec.decodeRequest(bytes) }
            ),
            (
                "response version", [0, 1],
                { bytes throws(ReplicaDecodingError) in _ = try ReplicaCodec.decodeResponse(bytes) }
            ),
            (
                "response tag", [1, 5],
                { bytes throws(ReplicaDecodingError) in _ = try ReplicaCodec.decodeResponse(bytes) }
            ),
            ("entry tag", [1, 9], { bytes throws(ReplicaDecodingError) in _ = try ReplicaCodec.decodeEntry(bytes) }),
            ("empty", [], { bytes throws(ReplicaDecodingError) in _ = try ReplicaCodec.decodeEntry(bytes) }),
            (
                "bad boolean", [1, 4, 2, 0],
                { bytes throws(ReplicaDecodingError) in _ = try ReplicaCodec.decodeResponse(bytes) }
            ),
        ]
        for (name, bytes, decode) in cases {
            #expect(throws: ReplicaDecodingError.self, "\(name)") { try decode(bytes) }
        }
        #expect(
            try ReplicaCodec.decodeRequest(push) == .push([.document(collection: "c", ReplicatedDocument(id: "d"))]))
        // A document with one field whose value has tag 7.
        let field = ReplicaCodec.encode(
            ReplicaRequest.push([
                .document(
                    collection: "c",
                    ReplicatedDocument(
                        id: "d",
                        fields: ["f": .init(value: .null, stamp: HLCTimestamp(millis: 1, counter: 0, node: "n"))],
                        deleted: nil, cleared: nil))
            ]))
        #expect(field.last == 0, "a null value is the last byte")
        var badValue = field
        badValue[badValue.count - 1] = 7
        #expect(throws: ReplicaDecodingError.self) { _ = try ReplicaCodec.decodeRequest(badValue) }
        // A digest with the wrong number of ranges.
        let digest = AntiEntropy.CollectionDigest(created: .zero, dropped: nil, ranges: [1, 2, 3])
        let pull = ReplicaCodec.encode(
            ReplicaRequest.pull(PullRequest(since: nil, digests: ["c": digest], coverage: [:])))
        #expect(throws: ReplicaDecodingError.self) { _ = try ReplicaCodec.decodeRequest(pull) }
        // A clock counter beyond 32 bits.
        var stamp = BinaryWriter()
        stamp.byte(ReplicaCodec.version)
        stamp.byte(1)
        stamp.varint(1)
        stamp.byte(1)
        stamp.string("c")
        stamp.varint(5)
        stamp.varint(UInt64(UInt32.max) + 1)
        stamp.string("n")
        stamp.bool(false)
        #expect(throws: ReplicaDecodingError.self) { _ = try ReplicaCodec.decodeRequest(stamp.bytes) }
        // An over-long varint.
        #expect(throws: ReplicaDecodingError.self) {
            _ = try ReplicaCodec.decodeEntry([1, 1] + [UInt8](repeating: 0xFF, count: 11) + [0])
        }
        // A count larger than the bytes left.
        #expect(throws: ReplicaDecodingError.self) { _ = try ReplicaCodec.decodeRequest([1, 1, 0xFF, 0xFF, 0x03]) }
        // Invalid UTF-8 in a collection name.
        #expect(throws: ReplicaDecodingError.self) { _ = try ReplicaCodec.decodeRequest([1, 1, 1, 1, 1, 0xFF]) }
    }

    /// A push of one document whose field holds `depth` nested arrays, written by hand.
    private static func nested(depth: Int) -> [UInt8] {
        var out = BinaryWriter()
        out.byte(ReplicaCodec.version)
        out.byte(1)  // push
        out.varint(1)
        out.byte(2)  // document change
        out.string("c")
        out.string("d")
        out.bool(false)
        out.bool(false)
        out.varint(1)
        out.string("f")
        ReplicaCodec.write(HLCTimestamp(millis: 1, counter: 0, node: "n"), to: &out)
        out.bool(true)
        for _ in 0..<depth {
            out.byte(5)
            out.varint(1)
        }
        out.byte(0)
        out.varint(0)  // no idempotency keys
        out.bool(false)  // no push chain
        out.bool(false)  // no sender
        return out.bytes
    }

    @Test("values nested deeper than the limit throw instead of exhausting the stack")
    func deepNesting() throws {
        let shallow = try ReplicaCodec.decodeRequest(Self.nested(depth: ReplicaCodec.maxDepth - 1))
        guard case .push(let changes, _, _) = shallow, changes.count == 1 else {
            Issue.record("expected a push of one change")
            return
        }
        #expect(throws: ReplicaDecodingError.self) {
            _ = try ReplicaCodec.decodeRequest(Self.nested(depth: ReplicaCodec.maxDepth))
        }
        #expect(throws: ReplicaDecodingError.self) { _ = try ReplicaCodec.decodeRequest(Self.nested(depth: 200_000)) }
    }

    @Test("random byte flips, insertions and deletions never crash the decoders", arguments: kinds)
    func fuzz(kind: Kind) {
        var random = SplitMix64(seed: 5)
        var decoded = 0
        for _ in 0..<3_000 {
            var bytes = kind.encoded(&random, false)
            for _ in 0...random.below(3) {
                switch random.below(4) {
                case 0 where !bytes.isEmpty: bytes[random.below(bytes.count)] ^= UInt8(1 << random.below(8))
                case 1 where !bytes.isEmpty: bytes[random.below(bytes.count)] = UInt8(random.below(256))
                case 2: bytes.insert(UInt8(random.below(256)), at: random.below(bytes.count + 1))
                case 3 where !bytes.isEmpty: bytes.remove(at: random.below(bytes.count))
                default: break
                }
            }
            do {
                let again = try kind.reencoded(bytes)
                decoded += 1
                // What decodes re-encodes canonically, and that decodes to the same bytes again.
                #expect(try kind.reencoded(again) == again)
            } catch {
                // ReplicaDecodingError is the only error the typed throw allows.
            }
        }
        #expect(decoded > 0, "some mutations still decode")
    }

    @Test("random bytes never crash the decoders")
    func randomBytes() {
        var random = SplitMix64(seed: 6)
        for _ in 0..<5_000 {
            let bytes = [UInt8(1)] + (0..<random.below(64)).map { _ in UInt8(random.below(256)) }
            _ = try? ReplicaCodec.decodeRequest(bytes)
            _ = try? ReplicaCodec.decodeResponse(bytes)
            _ = try? ReplicaCodec.decodeEntry(bytes)
        }
    }
}
