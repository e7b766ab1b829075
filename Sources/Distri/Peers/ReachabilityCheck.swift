import DistriCore
import DistriIdentity
import DistriWire
import NIOCore

/// One `CheckReachable` call: dials each address a peer advertises, from this node, and calls its
/// `Ping`, which must answer the peer's name (another program on that port, or another peer, does not
/// count). The dials run at once; each connect gives up after 2 s and each answer after 3 s; the
/// answers are read with small limits (a check cannot make the node take in much).
struct ReachabilityCheck {
    let name: String
    let addresses: [NodeAddress]
    /// Addresses that did not parse, with why.
    let malformed: [String: String]

    init(request: ServiceRequest) throws {
        guard request.data.readableBytes <= 16 << 10,
            let object = (try? JSONParser.parse(request.bytes))?.objectValue,
            let name = object["name"]?.stringValue, let list = object["addresses"]?.arrayValue
        else {
            throw ServiceError.badParams("CheckReachable needs {\"name\": PEER, \"addresses\": [\"host:port\", ...]}")
        }
        do {
            try PeerName.validate(name, what: "peer name")
        } catch {
            throw ServiceError.badParams("\(error)")
        }
        guard (1...RelayServices.maxCheckedAddresses).contains(list.count) else {
            throw ServiceError.badParams("CheckReachable checks 1 to \(RelayServices.maxCheckedAddresses) addresses")
        }
        var addresses: [NodeAddress] = []
        var malformed: [String: String] = [:]
        for item in list {
            let text = item.stringValue ?? "\(item)"
            if let address = item.stringValue.flatMap(NodeAddress.init), address.port > 0 {
                addresses.append(address)
            } else {
                malformed[String(text.prefix(300))] = "not host:port"
            }
        }
        self.name = name
        self.addresses = addresses
        self.malformed = malformed
    }

    /// Runs the dials; the reply's JSON bytes.
    func run() async throws -> [UInt8] {
        let name = self.name
        let results = await withTaskGroup(of: (NodeAddress, String?).self) { group in
            for address in addresses {
                group.addTask { (address, await Self.ping(address, expecting: name)) }
            }
            var results: [(NodeAddress, String?)] = []
            for await result in group { results.append(result) }
            return results
        }
        var reachable: [JSONValue] = []
        var unreachable = malformed.mapValues(JSONValue.string)
        for (address, failure) in results.sorted(by: { $0.0.description < $1.0.description }) {
            if let failure {
                unreachable[address.description] = .string(failure)
            } else {
                reachable.append(.string(address.description))
            }
        }
        return Array(
            JSONValue.object(["reachable": .array(reachable), "unreachable": .object(unreachable)]).jsonText.utf8)
    }

    /// nil when `address` answers `Ping` with `name`; otherwise why not.
    private static func ping(_ address: NodeAddress, expecting name: String) async -> String? {
        let client = Client(
            nodes: [address],
            configuration: ClientConfiguration(
                timeout: .seconds(3), connectTimeout: .seconds(2),
                limits: WireLimits(
                    maxFramePayload: 4096, chunkSize: 4096, maxMessageSize: 4096, maxPartialMessages: 4,
                    maxPartialBytes: 8192),
                membershipRefresh: nil, attemptTimeout: nil))
        let failure: String?
        do {
            let reply = try await client.send([], service: RelayServices.pingService, params: [])
            let answer = String(decoding: reply.prefix(64), as: UTF8.self)
            failure = answer == name ? nil : "answered as '\(answer)', not '\(name)'"
        } catch let error as ClientError {
            failure = error.kind == .connectFailed ? "could not connect from the cloud" : "\(error)"
        } catch {
            failure = "\(error)"
        }
        await client.shutdown()
        return failure
    }
}
