import Distri
import DistriCommandLine
import DistriCore
import DistriImaging
import Foundation

/// One run of one of the original system's tests against a cloud.
struct ExperimentResult: Codable, Sendable {
    var test: String
    var servers: Int
    var clients: Int
    var tasks: Int
    var failedTasks: Int
    var averageSeconds: Double
    var p50Seconds: Double
    var p99Seconds: Double
    var wallSeconds: Double
    /// DB test: the documents the clients added (acknowledged), and how many of them, with their
    /// update, every node holds (the fewest over the nodes).
    var documentsAcknowledged: Int?
    var documentsOnEveryNode: Int?
    /// DB test: per node address, the run's documents (with their update) it holds.
    var documentsPerNode: [String: Int]?
    /// The first few errors, for the report.
    var sampleErrors: [String]

    static let csvHeader =
        "test,servers,clients,tasks,failed_tasks,avg_s,p50_s,p99_s,wall_s,documents_acknowledged,documents_on_every_node"

    var csvRow: String {
        [
            test, "\(servers)", "\(clients)", "\(tasks)", "\(failedTasks)", String(format: "%.4f", averageSeconds),
            String(format: "%.4f", p50Seconds), String(format: "%.4f", p99Seconds), String(format: "%.2f", wallSeconds),
            documentsAcknowledged.map(String.init) ?? "", documentsOnEveryNode.map(String.init) ?? "",
        ].joined(separator: ",")
    }
}

/// The original system's two client tests, run by `clients` logical clients at once:
///
/// - `test-client-encrypt`: each client sends 10 Encrypt requests one after another; every answer is
///   verified (extracted and decrypted back to the exact image) before it counts as done.
/// - `test-client-db`: each client runs AddDocument, ReadCollection, UpdateDocument, ReadCollection on
///   ``databaseCollection`` (writes at `majority`, reads its own writes); afterwards every node is
///   asked, locally, how many of the run's documents it holds with their update.
///
/// Logical clients share a pool of connections (one ``Client`` per 16 logical clients, at most 64):
/// the original's clients were threads of one process too, and the node limits connections per
/// source address.
enum SeedExperiments {
    /// Requests per client in the Encrypt test, as in the original.
    static let encryptsPerClient = 10

    /// The collection the DB test writes. It differs from the original, which wrote `catalog`: here
    /// `catalog` holds the peers' signed image entries and only `PublishImage` may write it (plain
    /// AddDocument and UpdateDocument there are refused with `unauthorized`), so the test writes a
    /// collection of its own.
    static let databaseCollection = "example-db"

    static func clientPool(_ clients: Int, addresses: [NodeAddress], configuration: ClientConfiguration) -> [Client] {
        (0..<min(64, max(1, (clients + 15) / 16))).map { _ in
            Client(nodes: addresses, configuration: configuration)
        }
    }

    static func encrypt(
        clients: Int, addresses: [NodeAddress], configuration: ClientConfiguration, image: [UInt8]
    ) async -> ExperimentResult {
        let pool = clientPool(clients, addresses: addresses, configuration: configuration)
        let started = ContinuousClock.now
        let outcomes = await withTaskGroup(of: ClientOutcome.self) { group in
            for index in 0..<clients {
                let encryption = ImageEncryptionClient(client: pool[index % pool.count])
                group.addTask {
                    var outcome = ClientOutcome()
                    for _ in 0..<encryptsPerClient {
                        await outcome.time { _ = try await encryption.encrypt(image) }
                    }
                    return outcome
                }
            }
            return await group.reduce(into: [ClientOutcome]()) { $0.append($1) }
        }
        let wall = ContinuousClock.now - started
        for client in pool { await client.shutdown() }
        return result("test-client-encrypt", servers: addresses.count, clients: clients, outcomes, wall: wall)
    }

    static func database(clients: Int, addresses: [NodeAddress], configuration: ClientConfiguration) async
        -> ExperimentResult
    {
        let pool = clientPool(clients, addresses: addresses, configuration: configuration)
        let run = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let collection = databaseCollection
        let started = ContinuousClock.now
        var outcomes: [ClientOutcome] = []
        do {
            try await DocumentDatabase(client: pool[0]).createCollection(collection)
        } catch let error as ClientError where error.remoteCode == .conflict {
            // It exists already: fine.
        } catch {
            var failed = ClientOutcome()
            failed.record(error)
            outcomes.append(failed)
        }
        outcomes += await withTaskGroup(of: ClientOutcome.self) { group in
            for index in 0..<clients {
                // One session per logical client: it reads its own writes on whichever node answers.
                let database = DocumentDatabase(client: pool[index % pool.count])
                group.addTask {
                    var outcome = ClientOutcome()
                    var id: String?
                    await outcome.time {
                        id = try await database.add(
                            [
                                "run": .string(run), "client": .number(Double(index)),
                                "name": .string("client \(index)"),
                            ],
                            to: collection)
                    }
                    guard let id else { return outcome }
                    outcome.acknowledged = 1
                    await outcome.time { _ = try await database.read(collection, filter: ["_id": .string(id)]) }
                    await outcome.time { _ = try await database.update(id, in: collection, set: ["updated": true]) }
                    await outcome.time { _ = try await database.read(collection, filter: ["_id": .string(id)]) }
                    return outcome
                }
            }
            return await group.reduce(into: [ClientOutcome]()) { $0.append($1) }
        }
        let wall = ContinuousClock.now - started
        for client in pool { await client.shutdown() }
        var result = result("test-client-db", servers: addresses.count, clients: clients, outcomes, wall: wall)
        let acknowledged = outcomes.reduce(0) { $0 + $1.acknowledged }
        let perNode = await documentsPerNode(
            run: run, collection: collection, expected: acknowledged, addresses: addresses, configuration: configuration
        )
        result.documentsAcknowledged = acknowledged
        result.documentsPerNode = perNode
        result.documentsOnEveryNode = perNode.values.min() ?? 0
        return result
    }

    /// Each node's count, from its own replica, of the run's documents that carry their update.
    /// Replication is asynchronous for the third node of a majority write, so each node gets up to
    /// 30 s to hold everything that was acknowledged.
    private static func documentsPerNode(
        run: String, collection: String, expected: Int, addresses: [NodeAddress], configuration: ClientConfiguration
    ) async -> [String: Int] {
        var counts: [String: Int] = [:]
        for address in addresses {
            var pinned = configuration
            pinned.membershipRefresh = nil  // this node's own replica
            let client = Client(nodes: [address], configuration: pinned)
            let database = DocumentDatabase(client: client, readConsistency: .local, readYourWrites: false)
            var count = 0
            let deadline = ContinuousClock.now + .seconds(30)
            // Bounded: until the count is complete or 30 s pass.
            repeat {
                count =
                    (try? await database.count(collection, filter: ["run": .string(run), "updated": true])) ?? count
                if count >= expected { break }
                try? await Task.sleep(for: .milliseconds(200))
            } while ContinuousClock.now < deadline
            counts[address.description] = count
            await client.shutdown()
        }
        return counts
    }

    private static func result(
        _ test: String, servers: Int, clients: Int, _ outcomes: [ClientOutcome], wall: Duration
    ) -> ExperimentResult {
        let latencies = outcomes.flatMap(\.latencies).sorted()
        let failed = outcomes.reduce(0) { $0 + $1.failed }
        func percentile(_ p: Double) -> Double {
            latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
        }
        return ExperimentResult(
            test: test, servers: servers, clients: clients, tasks: latencies.count + failed, failedTasks: failed,
            averageSeconds: latencies.isEmpty ? 0 : latencies.reduce(0, +) / Double(latencies.count),
            p50Seconds: percentile(0.5), p99Seconds: percentile(0.99),
            wallSeconds: wall / .seconds(1),
            sampleErrors: Array(outcomes.flatMap(\.errors).prefix(5)))
    }
}

/// What one logical client saw: response times of the tasks that succeeded, and the failures.
struct ClientOutcome: Sendable {
    var latencies: [Double] = []
    var failed = 0
    var acknowledged = 0
    var errors: [String] = []

    /// Runs one task, timing it; a thrown error is a failed task.
    mutating func time(_ task: () async throws -> Void) async {
        let start = ContinuousClock.now
        do {
            try await task()
            let elapsed = ContinuousClock.now - start
            latencies.append(elapsed / .seconds(1))
        } catch {
            record(error)
        }
    }

    mutating func record(_ error: Error) {
        failed += 1
        if errors.count < 3 { errors.append("\(error)") }
    }
}
