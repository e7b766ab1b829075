import Testing

@testable import DistriCore

@Suite struct SWIMCodingTests {
    static let alice = Member(
        id: "alice", address: "10.0.0.1:7946", status: .alive, incarnation: 1_732_000_000_123,
        metadata: MemberMetadata(load: 0.75, capacity: 64, services: ["Resize", "Echo"]), metadataVersion: 7)
    static let bob = Member(id: "böb-🚀", address: "[::1]:7000", status: .suspect, incarnation: 3)
    static let carol = Member(
        id: "carol", address: "h:1", status: .dead, incarnation: .max,
        metadata: MemberMetadata(load: -1.5e300, capacity: -1), metadataVersion: .max)
    static let dave = Member(id: "", address: "", status: .left, incarnation: 0)

    static let envelopes: [SWIMEnvelope] = [
        SWIMEnvelope(from: alice, message: .ping(sequence: 1, gossip: [])),
        SWIMEnvelope(from: alice, message: .ping(sequence: .max, gossip: [bob, carol, dave])),
        SWIMEnvelope(
            from: bob, message: .pingRequest(sequence: 42, target: "carol", targetAddress: "h:1", gossip: [alice])),
        SWIMEnvelope(from: carol, message: .ack(sequence: 9, gossip: [dave])),
        SWIMEnvelope(from: dave, message: .nack(sequence: 0)),
        SWIMEnvelope(from: alice, message: .pushPull(members: [alice, bob, carol, dave], isReply: false)),
        SWIMEnvelope(from: bob, message: .pushPull(members: [], isReply: true)),
    ]

    @Test("every message kind survives a round trip")
    func roundTrip() throws {
        for envelope in Self.envelopes {
            let bytes = envelope.encode()
            #expect(bytes.first == SWIMEnvelope.wireVersion)
            #expect(try SWIMEnvelope.decode(bytes) == envelope)
        }
    }

    @Test("every truncation throws")
    func truncation() {
        for envelope in Self.envelopes {
            let bytes = envelope.encode()
            for length in 0..<bytes.count {
                #expect(throws: SWIMDecodingError.self) { try SWIMEnvelope.decode(Array(bytes.prefix(length))) }
            }
        }
    }

    @Test("bad versions, tags, statuses, counts, lengths and trailing bytes throw clear errors")
    func malformed() {
        let ping = Self.envelopes[0].encode()
        var wrongVersion = ping
        wrongVersion[0] = 2
        #expect(throws: SWIMDecodingError.unsupportedVersion(2)) { try SWIMEnvelope.decode(wrongVersion) }
        #expect(throws: SWIMDecodingError.trailingBytes(1)) { try SWIMEnvelope.decode(ping + [0]) }

        // version, from with empty id/address, status 9.
        let badStatus: [UInt8] = [1, 0, 0, 0, 0, 9] + Array(repeating: 0, count: 40)
        #expect(throws: SWIMDecodingError.unknownStatus(9)) { try SWIMEnvelope.decode(badStatus) }

        // A string length over the limit.
        let longString: [UInt8] = [1, 0x04, 0x01] + Array(repeating: 0x61, count: 1025)
        #expect(throws: SWIMDecodingError.tooLong("")) { try SWIMEnvelope.decode(longString) }

        // A pushPull claiming 65535 members in a few bytes must not allocate for them.
        let header = SWIMEnvelope(from: Self.dave, message: .pushPull(members: [], isReply: false)).encode()
        let forged = Array(header.dropLast(2)) + [0xFF, 0xFF] + Array(repeating: 0, count: 64)
        #expect(throws: SWIMDecodingError.tooMany("")) { try SWIMEnvelope.decode(forged) }

        // Invalid UTF-8 in an id.
        let invalid: [UInt8] = [1, 0, 2, 0xC3, 0x28] + Array(repeating: 0, count: 40)
        #expect(throws: SWIMDecodingError.invalidUTF8("")) { try SWIMEnvelope.decode(invalid) }

        let description = "\(SWIMDecodingError.unsupportedVersion(2))"
        #expect(description.contains("version 2"))
    }

    @Test("the encoder cuts over-long strings at a character boundary and lists at their limits")
    func encoderLimits() throws {
        var member = Self.alice
        member.id = String(repeating: "é", count: 1000)  // 2000 UTF-8 bytes
        member.metadata.services = (0..<100).map { "s\($0)" }
        let envelope = SWIMEnvelope(from: member, message: .nack(sequence: 1))
        let decoded = try SWIMEnvelope.decode(envelope.encode())
        #expect(decoded.from.id.utf8.count == 1024)
        #expect(decoded.from.id == String(repeating: "é", count: 512))
        #expect(decoded.from.metadata.services.count == SWIMEnvelope.maxServices)
    }

    @Test("2,000 random and mutated inputs never crash the decoder")
    func fuzz() {
        var random = SimulationRandom(seed: 0xF022)
        let valid = Self.envelopes.map { $0.encode() }
        var decoded = 0
        for round in 0..<2_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...300, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
                if !bytes.isEmpty && random.chance(0.5) { bytes[0] = 1 }
            } else {
                bytes = valid.randomElement(using: &random)!
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    guard !bytes.isEmpty else { break }
                    let index = Int.random(in: 0..<bytes.count, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: bytes[index] = UInt8.random(in: 0...255, using: &random)
                    case 1: bytes.remove(at: index)
                    default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: index)
                    }
                }
            }
            if let envelope = try? SWIMEnvelope.decode(bytes) {
                decoded += 1
                // Whatever decodes re-encodes to something that decodes (NaN loads aside).
                #expect((try? SWIMEnvelope.decode(envelope.encode())) != nil)
            }
        }
        #expect(decoded < 2_000)
    }
}
