import Distri
import DistriTestSupport
import NIOCore
import Testing

/// A client given one address learns the cloud: nodes added later get calls, nodes that left do not.
@Suite(.serialized) struct ClientDiscoveryTests {
    @Test("one address: a node added later gets calls; a node that left is dropped")
    func learnsAndDrops() async throws {
        try await withCloud(nodes: 2, clustered: true) { nodes, addresses in
            let client = Client(nodes: [addresses[0]], configuration: .discovering(refreshMillis: 200))
            await client.refreshMembership()
            #expect(Set(await client.knownNodes()) == Set(addresses))

            // A third node joins through the first.
            var configuration = CloudNodeConfiguration()
            configuration.seeds = [addresses[0]]
            configuration.cluster = .patient
            configuration.tls = try TestTLS.authority.nodeTLS(name: configuration.nodeID)
            let added = CloudNode(configuration: configuration)
            let addedAddress = try await added.start()
            do {
                let learnt = await eventuallyAsync(timeout: .seconds(20)) {
                    await client.knownNodes().contains(addedAddress)
                }
                #expect(learnt, "the client never learnt the added node")
                let before = added.stats().requestsReceived
                for _ in 0..<30 {
                    _ = try await client.call(ByteBuffer(bytes: [1]), service: BuiltinServices.echo, routing: .local)
                        .get()
                }
                let received = added.stats().requestsReceived - before
                print("calls the added node took: \(received) of 30")
                #expect(received >= 5, "the added node got \(received) of 30 calls")

                // The second node leaves gracefully: status left, dropped from the client's view.
                let leaving = nodes[1]
                let leavingAddress = addresses[1]
                await leaving.shutdown()
                let dropped = await eventuallyAsync(timeout: .seconds(20)) {
                    !(await client.knownNodes().contains(leavingAddress))
                }
                #expect(dropped, "the client still calls the node that left")
                for _ in 0..<30 {
                    _ = try await client.call(ByteBuffer(bytes: [1]), service: BuiltinServices.echo, routing: .local)
                        .get()
                }
                #expect(Set(await client.knownNodes()) == [addresses[0], addedAddress])
                await client.shutdown()
                await added.shutdown()
            } catch {
                await client.shutdown()
                await added.shutdown()
                throw error
            }
        }
    }

    @Test("the seed stays a fallback: a client whose seed left still reaches the others")
    func seedFallback() async throws {
        try await withCloud(nodes: 3, clustered: true) { nodes, addresses in
            let client = Client(nodes: [addresses[0]], configuration: .discovering(refreshMillis: 200))
            await client.refreshMembership()
            #expect(Set(await client.knownNodes()) == Set(addresses))
            await nodes[0].shutdown()
            for _ in 0..<10 {
                _ = try await client.send([1], service: BuiltinServices.echo)
            }
            // The seed, though gone, is still known (last), as the fallback.
            let fallback = await eventuallyAsync(timeout: .seconds(20)) {
                await client.knownNodes() == [addresses[1], addresses[2]].sorted { a, b in
                    nodes[addresses.firstIndex(of: a)!].id < nodes[addresses.firstIndex(of: b)!].id
                } + [addresses[0]]
            }
            let view = await client.knownNodes()
            #expect(fallback, "view: \(view)")
            await client.shutdown()
        }
    }
}
