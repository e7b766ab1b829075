import Distri
import DistriCore
import DistriTestSupport
import Foundation
import NIOCore
import Testing

/// What a run of increments was told: acknowledged, and failed (the call may or may not have applied).
private struct IncrementOutcome {
    var acknowledged = 0
    var failed = 0
    var errors: [String] = []
}

/// `clients` clients, each with its own connections to every node, each making `each` `$inc` of 1
/// on `counters/c` one after another at `consistency`.
private func increment(
    _ addresses: [NodeAddress], clients: Int, each: Int, consistency: WriteConsistency, progress: Counter = Counter()
) async -> IncrementOutcome {
    await withTaskGroup(of: IncrementOutcome.self) { group in
        for _ in 0..<clients {
            group.addTask {
                let client = Client(
                    nodes: addresses,
                    configuration: ClientConfiguration(timeout: .seconds(10), tls: E2ETLS.authority.clientTLS))
                let db = DocumentDatabase(client: client, consistency: consistency)
                var outcome = IncrementOutcome()
                for _ in 0..<each {
                    do {
                        try await db.update("c", in: "counters", increment: ["n": 1])
                        outcome.acknowledged += 1
                    } catch {
                        outcome.failed += 1
                        if outcome.errors.count < 3 { outcome.errors.append("\(error)") }
                    }
                    _ = progress.increment()
                }
                await client.shutdown()
                return outcome
            }
        }
        var total = IncrementOutcome()
        for await outcome in group {
            total.acknowledged += outcome.acknowledged
            total.failed += outcome.failed
            total.errors += outcome.errors
        }
        return total
    }
}

/// `counters/c`'s n as `address` holds it locally.
private func counterValue(at address: NodeAddress) async -> Double? {
    let client = Client(nodes: [address], configuration: .tls)
    defer { Task { await client.shutdown() } }
    let page = try? await DocumentDatabase(client: client).read("counters", filter: ["_id": "c"])
    return page?.documents.first?.body["n"]?.numberValue
}

/// Waits until every node holds the same value of the counter; returns it (nil: they never agreed).
private func convergedCounter(on addresses: [NodeAddress]) async -> Double? {
    var agreed: Double?
    _ = await poll(timeout: .seconds(30), every: .milliseconds(200)) {
        var values: [Double?] = []
        for address in addresses { values.append(await counterValue(at: address)) }
        guard let first = values.first ?? nil, values.allSatisfy({ $0 == first }) else { return false }
        agreed = first
        return true
    }
    return agreed
}

/// Three node processes that see each other, holding `counters/c` with n = 0.
private func withCounterCloud(_ body: ([NodeProcess], [NodeAddress]) async throws -> Void) async throws {
    try await withNodeProcesses(3) { nodes in
        let addresses = nodes.map(\.address)
        #expect(
            await poll(timeout: .seconds(10)) {
                await membershipAgrees(observers: addresses, alive: Set(nodes.map(\.id)))
            })
        let db = DocumentDatabase(client: Client(nodes: addresses, configuration: .tls), consistency: .all)
        try await db.createCollection("counters")
        try await db.add(["_id": "c", "n": 0], to: "counters")
        try await body(nodes, addresses)
    }
}

@Suite(.serialized) struct CounterProcessTests {
    @Test("8 clients x 500 acknowledged $inc of one field, 3 node processes: exactly 4,000 at one, then at majority")
    func exactIncrements() async throws {
        try await withCounterCloud { _, addresses in
            var expected = 0.0
            for consistency in [WriteConsistency.one, .majority] {
                let outcome = await increment(addresses, clients: 8, each: 500, consistency: consistency)
                #expect(outcome.failed == 0, "\(consistency): \(outcome.errors)")
                expected += Double(outcome.acknowledged)
                let value = await convergedCounter(on: addresses)
                #expect(value == expected, "\(consistency): \(outcome.acknowledged) acknowledged")
            }
            #expect(expected == 8_000)
        }
    }

    @Test(
        "the same at majority with a node killed -9 and restarted every few seconds: each acknowledged increment counted once, each failed one at most once"
    )
    func incrementsThroughKills() async throws {
        try await withCounterCloud { nodes, addresses in
            let progress = Counter()
            async let run = increment(addresses, clients: 8, each: 500, consistency: .majority, progress: progress)
            // Three kills of a different node each, spread over the run (bounded by count and time).
            for (round, mark) in [800, 1_800, 2_800].enumerated() {
                guard await poll(timeout: .seconds(60), every: .milliseconds(5), { progress.add(0) >= mark }) else {
                    break
                }
                let victim = nodes[round % nodes.count]
                victim.kill9()
                try victim.restart()
            }
            let outcome = await run
            let value = try #require(await convergedCounter(on: addresses), "the replicas never agreed")
            #expect(Double(outcome.acknowledged) <= value, "an acknowledged increment was lost")
            #expect(value <= Double(outcome.acknowledged + outcome.failed), "an increment counted twice")
            print(
                "increments through kills: \(outcome.acknowledged) acknowledged, \(outcome.failed) failed, "
                    + "counter \(value); errors: \(outcome.errors.prefix(3))")
        }
    }

    @Test(
        "a write whose node died after running it, retried on another node with the same task id, answers and counts once"
    )
    func retryAfterExecutorDeath() async throws {
        try await withCounterCloud { nodes, addresses in
            let client = Client(nodes: addresses, configuration: .tls)
            let task: UInt64 = 0x5EED_0001
            let params = ["counters", "c", "mode=merge", "consistency=majority"]
            let body = ByteBuffer(string: #"{"$inc":{"n":1}}"#)
            let first = try await client.call(
                body, service: "UpdateDocument", params: params, node: addresses[0], taskID: task
            ).get()
            nodes[0].kill9()
            let retry = try await client.call(
                body, service: "UpdateDocument", params: params, node: addresses[1], routing: .electRetry, taskID: task
            ).get()
            let firstReply = try JSONParser.parse(Array(buffer: first)).objectValue
            let retryReply = try JSONParser.parse(Array(buffer: retry)).objectValue
            #expect(retryReply?["replayed"] == true, "\(String(buffer: retry))")
            #expect(retryReply?["id"] == firstReply?["id"])
            // An add with an explicit _id, retried the same way, answers success with its id.
            let add = ByteBuffer(string: #"{"_id":"alice","v":1}"#)
            let addTask: UInt64 = 0x5EED_0002
            _ = try await client.call(
                add, service: "AddDocument", params: ["counters", "consistency=majority"], node: addresses[1],
                taskID: addTask
            ).get()
            let addRetry = try await client.call(
                add, service: "AddDocument", params: ["counters", "consistency=majority"], node: addresses[2],
                routing: .electRetry, taskID: addTask
            ).get()
            #expect(try JSONParser.parse(Array(buffer: addRetry)).objectValue?["id"] == "alice")
            await client.shutdown()
            #expect(await convergedCounter(on: Array(addresses.dropFirst())) == 1)
        }
    }
}
