/// The compact binary encoding of ``SWIMEnvelope``.
///
/// ```
/// envelope   = version:u8 (1) from:member tag:u8 body
/// tag 1 ping        = sequence:u64 gossip:members
/// tag 2 pingRequest = sequence:u64 target:string targetAddress:string gossip:members
/// tag 3 ack         = sequence:u64 gossip:members
/// tag 4 nack        = sequence:u64
/// tag 5 pushPull    = isReply:u8 (0 or 1) members:members
/// members    = count:u16 (≤ 1024) member*
/// member     = id:string address:string status:u8 incarnation:u64 metadataVersion:u64
///              load:u64 (Double bit pattern) capacity:u64 (two's complement) services
/// services   = count:u16 (≤ 64) string*
/// string     = length:u16 (≤ 1024) UTF-8 bytes
/// ```
/// Integers are big-endian. The encoder cuts longer strings and lists to the limits.
extension SWIMEnvelope {
    /// The version byte written first.
    public static let wireVersion: UInt8 = 1
    /// Most members in one message.
    public static let maxMembers = 1024
    /// Most services one member advertises.
    public static let maxServices = 64
    /// Longest string, in UTF-8 bytes.
    public static let maxStringLength = 1024

    private enum Tag: UInt8 {
        case ping = 1
        case pingRequest = 2
        case ack = 3
        case nack = 4
        case pushPull = 5
    }

    /// Smallest encoded member: two empty strings, status, four u64s and an empty services list.
    private static let minimumMemberSize = 2 + 2 + 1 + 8 + 8 + 8 + 8 + 2

    /// The envelope as compact, versioned binary.
    public func encode() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(Self.wireVersion)
        Self.write(from, to: &writer)
        switch message {
        case .ping(let sequence, let gossip):
            writer.write(Tag.ping.rawValue)
            writer.write(sequence)
            Self.write(gossip, to: &writer)
        case .pingRequest(let sequence, let target, let targetAddress, let gossip):
            writer.write(Tag.pingRequest.rawValue)
            writer.write(sequence)
            writer.write(target, maxLength: Self.maxStringLength)
            writer.write(targetAddress, maxLength: Self.maxStringLength)
            Self.write(gossip, to: &writer)
        case .ack(let sequence, let gossip):
            writer.write(Tag.ack.rawValue)
            writer.write(sequence)
            Self.write(gossip, to: &writer)
        case .nack(let sequence):
            writer.write(Tag.nack.rawValue)
            writer.write(sequence)
        case .pushPull(let members, let isReply):
            writer.write(Tag.pushPull.rawValue)
            writer.write(isReply ? 1 as UInt8 : 0)
            Self.write(members, to: &writer)
        }
        return writer.bytes
    }

    /// Decodes an envelope; throws on truncated, garbage, oversized or trailing input, and never traps.
    public static func decode(_ bytes: [UInt8]) throws(SWIMDecodingError) -> SWIMEnvelope {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8("version")
        guard version == wireVersion else { throw .unsupportedVersion(version) }
        let from = try readMember(&reader)
        let rawTag = try reader.readUInt8("message tag")
        guard let tag = Tag(rawValue: rawTag) else { throw .unknownMessage(rawTag) }
        let message: SWIMMessage
        switch tag {
        case .ping:
            let sequence = try reader.readUInt64("sequence")
            message = .ping(sequence: sequence, gossip: try readMembers(&reader))
        case .pingRequest:
            let sequence = try reader.readUInt64("sequence")
            let target = try reader.readString("target", maxLength: maxStringLength)
            let targetAddress = try reader.readString("target address", maxLength: maxStringLength)
            message = .pingRequest(
                sequence: sequence, target: target, targetAddress: targetAddress, gossip: try readMembers(&reader))
        case .ack:
            let sequence = try reader.readUInt64("sequence")
            message = .ack(sequence: sequence, gossip: try readMembers(&reader))
        case .nack:
            message = .nack(sequence: try reader.readUInt64("sequence"))
        case .pushPull:
            let flag = try reader.readUInt8("isReply")
            guard flag <= 1 else { throw .unknownMessage(flag) }
            message = .pushPull(members: try readMembers(&reader), isReply: flag == 1)
        }
        guard reader.remaining == 0 else { throw .trailingBytes(reader.remaining) }
        return SWIMEnvelope(from: from, message: message)
    }

    private static func write(_ members: [Member], to writer: inout ByteWriter) {
        let count = min(members.count, maxMembers)
        writer.write(UInt16(count))
        for member in members.prefix(count) {
            write(member, to: &writer)
        }
    }

    private static func write(_ member: Member, to writer: inout ByteWriter) {
        writer.write(member.id, maxLength: maxStringLength)
        writer.write(member.address, maxLength: maxStringLength)
        writer.write(member.status.rawValue)
        writer.write(member.incarnation)
        writer.write(member.metadataVersion)
        writer.write(member.metadata.load.bitPattern)
        writer.write(UInt64(bitPattern: Int64(member.metadata.capacity)))
        let services = member.metadata.services.prefix(maxServices)
        writer.write(UInt16(services.count))
        for service in services {
            writer.write(service, maxLength: maxStringLength)
        }
    }

    private static func readMembers(_ reader: inout ByteReader) throws(SWIMDecodingError) -> [Member] {
        let count = try reader.readCount("members", limit: maxMembers, minimumItemSize: minimumMemberSize)
        var members: [Member] = []
        members.reserveCapacity(count)
        for _ in 0..<count {
            members.append(try readMember(&reader))
        }
        return members
    }

    private static func readMember(_ reader: inout ByteReader) throws(SWIMDecodingError) -> Member {
        let id = try reader.readString("member id", maxLength: maxStringLength)
        let address = try reader.readString("member address", maxLength: maxStringLength)
        let rawStatus = try reader.readUInt8("member status")
        guard let status = MemberStatus(rawValue: rawStatus) else { throw .unknownStatus(rawStatus) }
        let incarnation = try reader.readUInt64("incarnation")
        let metadataVersion = try reader.readUInt64("metadata version")
        let load = Double(bitPattern: try reader.readUInt64("load"))
        let capacity = Int(truncatingIfNeeded: Int64(bitPattern: try reader.readUInt64("capacity")))
        let serviceCount = try reader.readCount("services", limit: maxServices, minimumItemSize: 2)
        var services: [String] = []
        services.reserveCapacity(serviceCount)
        for _ in 0..<serviceCount {
            services.append(try reader.readString("service name", maxLength: maxStringLength))
        }
        var metadata = MemberMetadata(load: load, capacity: capacity)
        metadata.services = services
        return Member(
            id: id, address: address, status: status, incarnation: incarnation, metadata: metadata,
            metadataVersion: metadataVersion)
    }
}
