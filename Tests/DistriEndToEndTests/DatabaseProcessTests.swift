import Distri
import DistriCore
import DistriTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

/// The seed's DB test against real node processes: each of `clients` simulated clients (its own
/// session, over a shared pool of connections) runs AddDocument, ReadCollection, UpdateDocument,
/// ReadCollection. Returns the failures and the ids added.
private func seedDatabaseTest(
    _ addresses: [NodeAddress], clients: Int, progress done: Counter = Counter()
) async -> (failures: [String], ids: [String]) {
    let pool = (0..<8).map { _ in
        Client(
            nodes: addresses, configuration: ClientConfiguration(timeout: .seconds(30), tls: E2ETLS.authority.clientTLS)
        )
    }
    defer { for client in pool { Task { await client.shutdown() } } }
    return await withTaskGroup(of: (String?, String?).self) { group in
        for index in 0..<clients {
            group.addTask {
                let db = DocumentDatabase(client: pool[index % pool.count])
                do {
                    let id = try await db.add(["client": .number(Double(index)), "views": 0], to: "seed")
                    let first = try await db.read("seed", filter: ["_id": .string(id)])
                    guard first.documents.count == 1 else { return ("client \(index): own add not read back", id) }
                    try await db.update(id, in: "seed", set: ["views": .number(Double(index + 1))])
                    let second = try await db.read("seed", filter: ["_id": .string(id)])
                    guard second.documents.first?.body["views"] == .number(Double(index + 1)) else {
                        return ("client \(index): own update not read back", id)
                    }
                    _ = done.increment()
                    return (nil, id)
                } catch {
                    _ = done.increment()
                    return ("client \(index): \(error)", nil)
                }
            }
        }
        var failures: [String] = []
        var ids: [String] = []
        for await (failure, id) in group {
            if let failure { failures.append(failure) }
            if let id { ids.append(id) }
        }
        return (failures, ids)
    }
}

/// A thread-safe counter.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    /// Adds `amount` and returns the new value.
    func add(_ amount: Int) -> Int { value.add(amount, ordering: .relaxed).newValue }
    func increment() -> Int { add(1) }
}

/// Every node's view of the collection: id → views, read locally from each node.
private func contents(of address: NodeAddress) async throws -> [String: JSONValue] {
    let client = Client(nodes: [address], configuration: .tls)
    defer { Task { await client.shutdown() } }
    let db = DocumentDatabase(client: client)
    var all: [String: JSONValue] = [:]
    var cursor: String?
    var pages = 0
    repeat {
        let page = try await db.read("seed", limit: 1000, after: cursor)
        for document in page.documents { all[document.id] = document.body["views"] ?? .null }
        cursor = page.next
        pages += 1
    } while cursor != nil && pages < 100
    return all
}

@Suite(.serialized) struct DatabaseProcessTests {
    @Test("the seed's DB test, 500 concurrent clients, 3 node processes: 0 failures, all on every node")
    func fiveHundredClients() async throws {
        try await withNodeProcesses(3) { nodes in
            let addresses = nodes.map(\.address)
            #expect(
                await poll(timeout: .seconds(10)) {
                    await membershipAgrees(observers: addresses, alive: Set(nodes.map(\.id)))
                })
            try await DocumentDatabase(client: Client(nodes: addresses, configuration: .tls)).createCollection("seed")
            let (failures, ids) = await seedDatabaseTest(addresses, clients: 500)
            #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(3))")
            try await expectEverywhere(ids, on: addresses)
        }
    }

    @Test("the same while one node is killed -9 and restarted mid-run (in memory: it refills from the others)")
    func fiveHundredClientsWithKillAndRestart() async throws {
        try await withNodeProcesses(3) { nodes in
            let addresses = nodes.map(\.address)
            #expect(
                await poll(timeout: .seconds(10)) {
                    await membershipAgrees(observers: addresses, alive: Set(nodes.map(\.id)))
                })
            try await DocumentDatabase(client: Client(nodes: addresses, configuration: .tls)).createCollection("seed")
            let victim = nodes[2]
            let progress = Counter()
            async let outcome = seedDatabaseTest(addresses, clients: 500, progress: progress)
            #expect(await poll(timeout: .seconds(60), every: .milliseconds(5)) { progress.add(0) >= 150 })
            victim.kill9()
            try victim.restart()
            let (failures, ids) = await outcome
            #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(3))")
            try await expectEverywhere(ids, on: addresses)
        }
    }

    /// Every added document, with its update, on every node (after anti-entropy has run).
    private func expectEverywhere(_ ids: [String], on addresses: [NodeAddress]) async throws {
        #expect(ids.count == 500)
        var lastMismatch = ""
        let converged = await poll(timeout: .seconds(20), every: .milliseconds(250)) {
            for address in addresses {
                guard let seen = try? await contents(of: address) else {
                    lastMismatch = "\(address) unreachable"
                    return false
                }
                let missing = ids.filter { seen[$0] == nil }
                let stale = ids.filter { seen[$0] == .number(0) }
                guard missing.isEmpty, stale.isEmpty, seen.count == ids.count else {
                    lastMismatch =
                        "\(address): \(missing.count) missing, \(stale.count) without update, \(seen.count) held"
                    return false
                }
            }
            return true
        }
        #expect(converged, "\(lastMismatch)")
    }
}
