import Distri
import DistriCore
import DistriTestSupport
import DistriWire
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@Suite struct CloudNodeTests {
    @Test("3 nodes answer 10,000 concurrent calls from one client; every reply matches its request")
    func tenThousandConcurrentCalls() async throws {
        try await withCloud(
            nodes: 3,
            setUp: { node in
                node.register("Reverse") { request in Array(request.bytes.reversed()) }
            }
        ) { nodes, addresses in
            // Without the attempt timeout: this test counts executions exactly, and on a stalled
            // 2-core machine a call whose node is silent past the timeout is moved to another node
            // while the first still runs it (seen once in CI: 10,001 executions of 10,000 calls;
            // the closing note of 2026-12-07 leaves it for the retry's task lookup to close).
            var configuration = ClientConfiguration.tls
            configuration.attemptTimeout = nil
            let client = Client(nodes: addresses, configuration: configuration)
            let futures = (0..<10_000).map { i in
                client.call(ByteBuffer(string: "call-\(i)"), service: "Reverse").map { reply in
                    (i, String(buffer: reply))
                }
            }
            var matched = 0
            for future in futures {
                let (i, reply) = try await future.get()
                #expect(reply == String("call-\(i)".reversed()))
                matched += 1
            }
            #expect(matched == 10_000)
            let stats = nodes.map { $0.stats() }
            #expect(stats.reduce(0) { $0 + $1.completed } == 10_000)
            #expect(stats.allSatisfy { $0.completed > 1000 }, "calls are spread over the nodes")
            #expect(stats.allSatisfy { $0.rejectedBusy == 0 && $0.failed == 0 })
            await client.shutdown()
        }
    }

    @Test("a node at capacity answers busy at once and loses none of what it accepted")
    func busyAtCapacity() async throws {
        let gate = Gate()
        try await withCloud(
            nodes: 1,
            configure: {
                $0.capacity = 2
                $0.queueLimit = 2
            },
            setUp: { node in
                node.register("Slow") { request in
                    await gate.wait()
                    return request.bytes
                }
            }
        ) { nodes, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            let futures = (0..<10).map { i in client.call(ByteBuffer(string: "\(i)"), service: "Slow") }
            // Six calls are refused while two run and two wait.
            var busy = 0
            for future in futures[4...] {
                do {
                    _ = try await future.get()
                } catch let error as ClientError {
                    #expect(error.remoteCode == .busy)
                    busy += 1
                }
            }
            #expect(busy == 6)
            #expect(gate.waiting == 2)
            #expect(nodes[0].stats().queued == 2)
            gate.open()
            for (i, future) in futures[..<4].enumerated() {
                #expect(String(buffer: try await future.get()) == "\(i)")
            }
            let stats = nodes[0].stats()
            #expect(stats.rejectedBusy == 6)
            #expect(stats.completed == 4)
            #expect(stats.accepted == 4)
            await client.shutdown()
        }
    }

    @Test("a 32 MiB payload round-trips byte-exact")
    func largePayload() async throws {
        try await withCloud(nodes: 1) { _, addresses in
            var generator = SystemRandomNumberGenerator()
            var payload = ByteBuffer()
            payload.reserveCapacity(32 << 20)
            for _ in 0..<(32 << 20) / 8 { payload.writeInteger(generator.next() as UInt64) }
            let client = Client(nodes: addresses, configuration: .tls)
            async let small = client.call(ByteBuffer(string: "small"), service: BuiltinServices.echo)
                .get()
            let reply = try await client.call(payload, service: BuiltinServices.echo).get()
            #expect(reply.readableBytes == 32 << 20)
            #expect(reply == payload)
            #expect(String(buffer: try await small) == "small")
            await client.shutdown()
        }
    }

    @Test("an unknown service, a thrown service error and a missed deadline each get a clear error")
    func typedErrors() async throws {
        try await withCloud(
            nodes: 1,
            setUp: { node in
                node.register("Picky") { request -> [UInt8] in
                    throw ServiceError.badParams("Picky needs \(request.params.count + 1) params")
                }
                node.register("Sleepy") { _ -> [UInt8] in
                    try await Task.sleep(for: .milliseconds(500))
                    return []
                }
            }
        ) { _, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            await #expect {
                _ = try await client.send([1], service: "NoSuchService")
            } throws: { ($0 as? ClientError)?.remoteCode == .unknownService }
            await #expect {
                _ = try await client.send([1], service: "Picky", params: [])
            } throws: {
                ($0 as? ClientError)?.remoteCode == .badParams && "\($0)".contains("needs 1 params")
            }
            await #expect {
                _ = try await client.send([1], service: "Sleepy", params: [], timeout: .milliseconds(50))
            } throws: { ($0 as? ClientError)?.kind == .deadlineExceeded }
            // The connection is still good after all of that.
            let echoed = try await client.send([7, 8], service: BuiltinServices.echo)
            #expect(echoed == [7, 8])
            await client.shutdown()
        }
    }

    @Test("calls on one connection time out each at its own deadline, an earlier one after a later one")
    func timeoutsOnOneConnection() async throws {
        try await withCloud(
            nodes: 1,
            setUp: { node in
                node.register("Sleepy") { _ -> [UInt8] in
                    try await Task.sleep(for: .seconds(1))
                    return [1]
                }
            }
        ) { _, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            _ = try await client.send([0], service: BuiltinServices.echo)  // one connection, made
            // The connection's timer is armed at 5 s by the first call; the second call's 50 ms must
            // re-arm it, or the second call would get its reply after 1 s instead of timing out.
            async let patient = client.send([1], service: "Sleepy", params: [], timeout: .seconds(5))
            await #expect {
                _ = try await client.send([2], service: "Sleepy", params: [], timeout: .milliseconds(50))
            } throws: { ($0 as? ClientError)?.kind == .deadlineExceeded }
            // The patient call is unaffected, and a third call after both times out again.
            #expect(try await patient == [1])
            await #expect {
                _ = try await client.send([3], service: "Sleepy", params: [], timeout: .milliseconds(50))
            } throws: { ($0 as? ClientError)?.kind == .deadlineExceeded }
            await client.shutdown()
        }
    }

    @Test("the client moves on to the next node when one is unreachable")
    func unreachableNodeSkipped() async throws {
        let dead = try await unusedLoopbackAddress()
        try await withCloud(nodes: 1) { _, addresses in
            let client = Client(nodes: [dead] + addresses, configuration: .tls)
            for i in 0..<20 {
                let echoed = try await client.send([UInt8(i)], service: BuiltinServices.echo)
                #expect(echoed == [UInt8(i)])
            }
            await client.shutdown()
        }
        let lonely = Client(nodes: [dead], configuration: .tls)
        await #expect {
            _ = try await lonely.send([1], service: BuiltinServices.echo)
        } throws: { ($0 as? ClientError)?.kind == .connectFailed }
        await lonely.shutdown()
    }

    @Test("collectStats returns every node's stats, and says which node is unreachable")
    func collectStats() async throws {
        let dead = try await unusedLoopbackAddress()
        try await withCloud(nodes: 2) { nodes, addresses in
            let client = Client(nodes: addresses + [dead], configuration: .tls)
            for _ in 0..<10 { _ = try await client.send([1], service: BuiltinServices.echo) }
            let results = await client.collectStats()
            #expect(results.count == 3)
            let stats = results.compactMap { try? $0.result.get() }
            #expect(Set(stats.map(\.nodeID)) == Set(nodes.map(\.id)))
            #expect(stats.reduce(0) { $0 + $1.completed } >= 10)
            #expect(stats.allSatisfy { $0.uptimeSeconds > 0 && $0.capacity == 64 })
            guard case .failure(let error) = results[2].result else {
                Issue.record("the dead node should fail")
                return
            }
            #expect(error.node == dead)
            await client.shutdown()
        }
    }

    @Test("graceful shutdown finishes work in flight and refuses new work")
    func gracefulShutdown() async throws {
        let gate = Gate()
        var configuration = CloudNodeConfiguration()
        configuration.capacity = 4
        configuration.tls = try TestTLS.authority.nodeTLS(name: configuration.nodeID)
        // One event loop: the last reply is queued on it before the drain ends there, so a close that
        // did not flush first would drop the reply every time, not only when the loops interleave so.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let node = CloudNode(configuration: configuration, group: group)
        node.register("Slow") { request in
            await gate.wait()
            return request.bytes
        }
        let address = try await node.start()
        let client = Client(nodes: [address], configuration: .tls)
        let inFlight = client.call(ByteBuffer(string: "finish me"), service: "Slow")
        #expect(await eventually { gate.waiting == 1 })
        async let stopped: Void = node.shutdown()
        // The late call must arrive once the drain began, or it would run (and wait at the gate).
        #expect(await eventually { node.stats().draining })
        await #expect {
            _ = try await client.call(ByteBuffer(string: "late"), service: "Slow").get()
        } throws: { ($0 as? ClientError)?.remoteCode == .shuttingDown }
        gate.open()
        #expect(String(buffer: try await inFlight.get()) == "finish me")
        await stopped
        await client.shutdown()
        try await group.shutdownGracefully()
    }
}

@Suite struct ClusterInProcessTests {
    @Test("nodes started from one seed converge on one membership and elect across it")
    func joinAndElect() async throws {
        let runs = Counter()
        try await withCloud(
            nodes: 3, clustered: true,
            setUp: { node in
                node.register("Where") { _ in
                    _ = runs.increment()
                    return Array(node.id.utf8)
                }
            }
        ) { nodes, addresses in
            // Every node advertises the user service, and each task runs on exactly one node.
            #expect(
                await eventually {
                    nodes[0].stats().members.allSatisfy { $0.id == nodes[0].id || $0.services.contains("Where") }
                })
            let client = Client(nodes: [addresses[0]], configuration: .tls)
            for _ in 0..<50 { _ = try await client.send([], service: "Where") }
            #expect(runs.increment() == 51, "50 tasks, 50 executions: no broadcast, no repeat")
            let cluster = nodes[0].stats().cluster
            #expect(cluster.electionsWon + cluster.tasksForwarded == 50)
            await client.shutdown()
        }
    }

    @Test("an entry node that is busier forwards to an idle node; the forwarded task runs once")
    func forwardsWhenBusy() async throws {
        let gate = NIOLockedValueBox(Gate())
        let runs = Counter()
        try await withCloud(
            nodes: 2, clustered: true, configure: { $0.capacity = 8 },
            setUp: { node in
                node.register("Hold") { _ in
                    _ = runs.increment()
                    await gate.withLockedValue { $0 }.wait()
                    return Array(node.id.utf8)
                }
            }
        ) { nodes, addresses in
            let client = Client(nodes: [addresses[0]], configuration: .tls)
            // A machine busy with other tests can make a node briefly suspect its peer (and keep every
            // task): try up to three bursts, each once the entry node sees its peer alive.
            var executors: [String: Int] = [:]
            var bursts = 0
            for _ in 0..<3 where executors.count < 2 {
                bursts += 1
                let round = Gate()
                gate.withLockedValue { $0 = round }
                #expect(
                    await eventually {
                        nodes[0].stats().members.filter { $0.status == "alive" && $0.services.contains("Hold") }.count
                            == 2
                    })
                let calls = (0..<8).map { _ in client.call(ByteBuffer(), service: "Hold") }
                #expect(await eventually { round.waiting == 8 })
                round.open()
                executors = [:]
                for call in calls { executors[String(buffer: try await call.get()), default: 0] += 1 }
            }
            #expect(executors.count == 2, "both nodes ran tasks: \(executors)")
            #expect(executors.values.reduce(0, +) == 8)
            #expect(runs.increment() == bursts * 8 + 1, "every task ran exactly once")
            #expect(nodes[0].stats().cluster.tasksForwarded > 0)
            await client.shutdown()
        }
    }

    @Test("a retried task id is answered from the dedup window, not run twice")
    func dedupOnRetry() async throws {
        try await withCloud(
            nodes: 1,
            setUp: { node in
                let runs = Counter()
                node.register("Count") { _ in Array("\(runs.increment())".utf8) }
            }
        ) { nodes, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            let first = try await client.call(ByteBuffer(), service: "Count", taskID: 77).get()
            let retry = try await client.call(ByteBuffer(), service: "Count", taskID: 77).get()
            let other = try await client.call(ByteBuffer(), service: "Count", taskID: 78).get()
            #expect(String(buffer: first) == "1")
            #expect(String(buffer: retry) == "1")
            #expect(String(buffer: other) == "2")
            #expect(nodes[0].stats().cluster.deduplicated == 1)
            await client.shutdown()
        }
    }

    @Test("a retry through another node finds the node that ran the task and is answered from there")
    func retryFindsExecutor() async throws {
        let runs = Counter()
        try await withCloud(
            nodes: 2, clustered: true,
            setUp: { node in node.register("Count") { _ in Array("\(runs.increment())".utf8) } }
        ) { nodes, addresses in
            #expect(
                await eventually {
                    nodes.allSatisfy {
                        $0.stats().members.filter { $0.status == "alive" && $0.services.contains("Count") }.count == 2
                    }
                })
            let client = Client(nodes: addresses, configuration: .tls)
            let first = try await client.call(
                ByteBuffer(), service: "Count", node: addresses[1], routing: .local, taskID: 99
            ).get()
            let retried = try await client.call(
                ByteBuffer(), service: "Count", node: addresses[0], routing: .electRetry, taskID: 99
            ).get()
            #expect(String(buffer: first) == "1")
            #expect(String(buffer: retried) == "1", "the retry is answered by the node that ran it")
            #expect(runs.increment() == 2, "the task ran once")
            await client.shutdown()
        }
    }

    @Test("chaos mode makes a node go dark and counts it as a server fail")
    func chaos() async throws {
        var configuration = CloudNodeConfiguration()
        configuration.cluster.chaosRate = 1
        configuration.tls = try TestTLS.authority.nodeTLS(name: configuration.nodeID)
        let node = CloudNode(configuration: configuration)
        _ = try await node.start()
        #expect(await eventually(timeout: .seconds(20)) { node.stats().serverFails > 0 })
        await node.shutdown()
    }
}

final class Counter: Sendable {
    private let value = NIOLockedValueBox(0)
    func increment() -> Int {
        value.withLockedValue {
            $0 += 1; return $0
        }
    }
}

extension ClusterSettings {
    /// Slower probing, so that a machine busy with parallel tests does not suspect healthy nodes.
    static let patient: ClusterSettings = {
        var settings = ClusterSettings()
        settings.swim.probeInterval = 500
        settings.swim.probeTimeout = 300
        return settings
    }()
}
