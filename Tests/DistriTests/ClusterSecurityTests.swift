import Distri
import DistriCore
import DistriTestSupport
import DistriWire
import NIOCore
import Testing

/// How a call ended: its reply, a remote error code, or a connection that never carried it.
private enum Outcome: Equatable {
    case answered
    case refused(ErrorCode)
    case noConnection
}

/// The services only another node may call.
private let nodeOnlyServices = ["Gossip", "Replicate", "TaskStatus"]

private func outcome(_ client: Client, _ service: String, at address: NodeAddress) async -> Outcome {
    do {
        _ = try await client.call(ByteBuffer(), service: service, node: address, routing: .local).get()
        return .answered
    } catch let error as ClientError {
        if let code = error.remoteCode { return .refused(code) }
        return .noConnection
    } catch {
        return .noConnection
    }
}

@Suite("Cluster trust: mutual TLS between nodes, internal services for certified nodes only", .serialized)
struct ClusterSecurityTests {
    @Test("a node with a certificate from another CA is refused at join and by every internal service")
    func foreignAuthority() async throws {
        try await withCloud(nodes: 2, clustered: true) { nodes, addresses in
            let foreign = try ThrowawayAuthority()
            var configuration = CloudNodeConfiguration(seeds: [addresses[0]], nodeID: "intruder")
            configuration.cluster.swim.probeInterval = 200
            configuration.cluster.swim.probeTimeout = 100
            configuration.tls = try foreign.nodeTLS(name: "intruder")
            let intruder = CloudNode(configuration: configuration)
            _ = try await intruder.start()
            let refusedAtJoin = await eventually(timeout: .seconds(20)) {
                nodes[0].stats().tlsHandshakesFailed > 0
            }
            #expect(refusedAtJoin, "the intruder's join never reached the TLS check")
            #expect(nodes.allSatisfy { !$0.stats().members.contains { $0.id == "intruder" } })
            #expect(intruder.stats().members.filter { $0.status == "alive" }.map(\.id) == ["intruder"])
            await intruder.shutdown()

            // Its certificate, shown to a node that trusts only this cluster's authority, is refused in
            // the handshake; so is a client that trusts only the foreign authority.
            let foreignNode = try ClusterCertificates.issue(name: "n9", role: .node, authority: foreign.authority)
            let showsForeign = try ClusterTLS(
                authorityPEM: TestTLS.authority.authority.certificatePEM, certificatePEM: foreignNode.certificatePEM,
                keyPEM: foreignNode.keyPEM)
            for tls in [showsForeign, try foreign.nodeTLS(name: "n8")] {
                let client = Client(nodes: [addresses[0]], configuration: ClientConfiguration(tls: tls))
                for service in nodeOnlyServices {
                    let failedBefore = nodes[0].stats().tlsHandshakesFailed
                    #expect(await outcome(client, service, at: addresses[0]) == .noConnection, "\(service)")
                    // Refused in the handshake: the node counts it.
                    #expect(await eventually { nodes[0].stats().tlsHandshakesFailed > failedBefore }, "\(service)")
                }
                await client.shutdown()
            }
        }
    }

    @Test("a client certificate, or none, reaches the public services but no internal one; refusals are counted")
    func clientsAreNotNodes() async throws {
        try await withCloud(nodes: 1) { nodes, addresses in
            let certified = try TestTLS.authority.tls(name: "some-client", role: .client)
            for tls in [certified, TestTLS.authority.clientTLS] {
                let client = Client(nodes: addresses, configuration: ClientConfiguration(tls: tls))
                #expect(await outcome(client, BuiltinServices.echo, at: addresses[0]) == .answered)
                for service in nodeOnlyServices {
                    #expect(await outcome(client, service, at: addresses[0]) == .refused(.unauthorized), "\(service)")
                }
                await client.shutdown()
            }
            #expect(nodes[0].stats().unauthorizedCalls == UInt64(2 * nodeOnlyServices.count))
        }
    }

    @Test("a node certificate does not let its holder gossip or replicate in another member's name")
    func gossipUnderAnotherName() async throws {
        try await withCloud(nodes: 1) { _, addresses in
            let client = Client(
                nodes: addresses,
                configuration: ClientConfiguration(tls: try TestTLS.authority.nodeTLS(name: "mallory")))
            let posing = SWIMEnvelope(
                from: Member(id: "someone-else", address: "127.0.0.1:1"), message: .ping(sequence: 1, gossip: []))
            let honest = SWIMEnvelope(
                from: Member(id: "mallory", address: "127.0.0.1:1"), message: .ping(sequence: 2, gossip: []))
            for (envelope, expected) in [(posing, Outcome.refused(.unauthorized)), (honest, .answered)] {
                var result = Outcome.noConnection
                do {
                    _ = try await client.call(
                        ByteBuffer(bytes: envelope.encode()), service: "Gossip", node: addresses[0], routing: .local
                    ).get()
                    result = .answered
                } catch let error as ClientError {
                    result = error.remoteCode.map { .refused($0) } ?? .noConnection
                }
                #expect(result == expected, "\(envelope.from.id)")
            }
            // Nor replicate in another node's name.
            let replicate = await remoteCode {
                _ = try await client.call(
                    ByteBuffer(), service: "Replicate", params: ["someone-else"], node: addresses[0], routing: .local
                ).get()
            }
            #expect(replicate == .unauthorized)
            // In its own name it gets past the check (its empty message is then malformed).
            let replicateHonestly = await remoteCode {
                _ = try await client.call(
                    ByteBuffer(), service: "Replicate", params: ["mallory"], node: addresses[0], routing: .local
                ).get()
            }
            #expect(replicateHonestly != .unauthorized && replicateHonestly != nil)
            await client.shutdown()
        }
    }

    @Test("plain TCP to a TLS port is refused, and counted")
    func plainTCPRefused() async throws {
        try await withCloud(nodes: 1) { nodes, addresses in
            let plain = Client(nodes: addresses, configuration: ClientConfiguration(timeout: .seconds(5)))
            #expect(await outcome(plain, BuiltinServices.echo, at: addresses[0]) == .noConnection)
            await plain.shutdown()
            var frame = ByteBuffer()
            FrameHeader(kind: .request, flags: .endOfMessage, requestID: 1, payloadLength: 0).write(to: &frame)
            let exchange = try await rawExchange(frame, with: addresses[0], plain: true)
            #expect(exchange.closedByPeer)
            #expect(await eventually { nodes[0].stats().tlsHandshakesFailed >= 2 })
        }
    }

    @Test("an --insecure cloud (no TLS) still forms and answers plain clients")
    func insecureCloud() async throws {
        try await withCloud(nodes: 2, clustered: true, insecure: true) { _, addresses in
            let client = Client(nodes: addresses)
            let echoed = try await client.send([7], service: BuiltinServices.echo)
            #expect(echoed == [7])
            await client.shutdown()
        }
    }
}
