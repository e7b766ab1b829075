import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import Foundation
import NIOCore
import NIOPosix

/// `distri-bench db`: document DB writes and reads at consistency one and majority, beside
/// Echo calls against the same cloud in the same run.
struct BenchDBCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Measure document DB writes and reads at consistency one and majority, beside Echo.",
        discussion: """
            Without --cloud it starts `distri-node local --nodes N` as a child process and stops it afterwards. \
            For each mode, one and majority, it runs --writers concurrent AddDocument calls, \
            then --readers concurrent reads of one document by id, each for --seconds after --warmup. \
            Writes use consistency=one|majority, reads read=local|majority. \
            Echo with the same concurrency and payload size, against the same cloud, is the baseline. \
            All calls come from one client thread; the cloud runs in its own process. \
            With --clients N the calls go to N clients in turn, each with its own connection to every node, \
            so that a node with several event loops (--loops-per-node) serves clients on each, as a busy node does.
            """)

    enum ReadOperation: String, ExpressibleByArgument, CaseIterable, Codable {
        /// `Count` with the filter `{"_id": ID}`: the reply is `{"count":1}`.
        case count
        /// `ReadCollection` with the filter `{"_id": ID}` and limit 1: the reply holds the document.
        case read
    }

    @OptionGroup var target: BenchCloud

    @Option(name: .long, help: "DB write-ahead log directory of the local cloud (default: in memory).")
    var dataDir: String?

    @Option(name: .long, help: "Concurrent writers.")
    var writers = 64

    @Option(name: .long, help: "Concurrent readers.")
    var readers = 64

    @Option(
        name: .long,
        help: """
            Clients the calls are spread over, each with its own connection to every node \
            (a node with several event loops then serves clients on each, as a real one does).
            """)
    var clients = 1

    @Option(name: .long, help: "Event loops per node of the local cloud (default: as `distri-node local`).")
    var loopsPerNode: Int?

    @Option(name: .long, help: "Seconds measured per run, after the warm-up.")
    var seconds: Double = 5

    @Option(name: .long, help: "Seconds of warm-up per run, not measured.")
    var warmup: Double = 1

    @Option(name: .long, help: "Bytes of JSON per document written (and of payload per Echo call).")
    var documentBytes = 100

    @Option(name: .long, help: "Documents in the collection the readers read from.")
    var readDocuments = 1000

    @Option(
        name: .long,
        help: "How to read one document by id: count (Count with an _id filter) or read (ReadCollection, limit 1).")
    var readWith = ReadOperation.count

    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Write consistencies to measure, each with its read (one: read=local, majority: read=majority).")
    var modes: [WriteConsistency] = [.one, .majority]

    @Flag(name: .long, help: "Measure writes only (no reads), e.g. to profile one write mode alone.")
    var writesOnly = false

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    func validate() throws {
        if writers < 1 || readers < 1 || clients < 1 {
            throw ValidationError("--writers, --readers and --clients must be positive")
        }
        if !(seconds > 0) || warmup < 0 {
            throw ValidationError("--seconds must be positive and --warmup not negative")
        }
        if !(40...(1 << 20)).contains(documentBytes) {
            throw ValidationError("--document-bytes must be between 40 and 1048576")
        }
        if readDocuments < 1 { throw ValidationError("--read-documents must be positive") }
        if let loopsPerNode {
            if target.cloud != nil {
                throw ValidationError("--loops-per-node sets up the local cloud: not with --cloud")
            }
            if !(1...64).contains(loopsPerNode) { throw ValidationError("--loops-per-node must be between 1 and 64") }
        }
        if modes.isEmpty || modes.contains(.all) {
            throw ValidationError("--modes takes one, majority or both")
        }
    }

    func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let cloud = try target.open(
            extraArguments: (dataDir.map { ["--data-dir", $0] } ?? [])
                + (loopsPerNode.map { ["--loops-per-node", String($0)] } ?? []))
        let (addresses, child) = (cloud.addresses, cloud.child)
        defer { child?.stop() }

        let client = Client(nodes: addresses, configuration: cloud.configuration, group: group)
        // Further clients share the first one's thread, each with its own connections.
        let extras = (1..<clients).map { _ in
            Client(nodes: addresses, configuration: cloud.configuration, group: client.eventLoop)
        }
        func shutdown() async {
            for each in [client] + extras { await each.shutdown() }
        }
        do {
            let report = try await measure(
                client: client, extras: extras, addresses: addresses, cloudProcess: child?.process.processIdentifier)
            await shutdown()
            print(json ? try JSONStyle.text(report) : report.text)
            if report.runs.contains(where: { $0.result.failures > 0 }) { throw ExitCode(2) }
        } catch {
            await shutdown()
            throw error
        }
    }

    private func measure(
        client: Client, extras: [Client], addresses: [NodeAddress], cloudProcess: Int32?
    ) async throws -> BenchDBReport {
        let local = cloudProcess != nil
        try await Self.waitForMembership(client: client, nodes: addresses.count)
        let echoPayload = ByteBuffer(repeating: 0x61, count: documentBytes)
        // Warm up: open every connection.
        for address in addresses {
            _ = try await client.call(echoPayload, service: BuiltinServices.echo, node: address).get()
        }
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        // Short names, as real ones tend to be (inline small strings in the replica's tables).
        let writes = "bw-\(suffix)"
        let reads = "br-\(suffix)"
        // consistency=all: every replica knows the collections and the documents to read before the runs.
        for name in [writes, reads] {
            _ = try await client.call(ByteBuffer(), service: "CreateCollection", params: [name, "consistency=all"])
                .get()
        }
        let ids = (0..<readDocuments).map { String(format: "r%06d", $0) }
        for batch in stride(from: 0, to: ids.count, by: 256) {
            let adds = ids[batch..<min(ids.count, batch + 256)].map { id in
                client.call(
                    ByteBuffer(string: #"{"_id":"\#(id)","n":1,"name":"document \#(id)"}"#), service: "AddDocument",
                    params: [reads, "consistency=all"])
            }
            for add in adds { _ = try await add.get() }
        }

        let warmup = TimeAmount.nanoseconds(Int64(self.warmup * 1e9))
        let duration = TimeAmount.nanoseconds(Int64(seconds * 1e9))
        let loop = client.eventLoop
        // Every client on the same thread, each with its own connections, used in turn.
        for extra in extras {
            for address in addresses {
                _ = try await extra.call(echoPayload, service: BuiltinServices.echo, node: address).get()
            }
        }
        let pool = [client] + extras
        let clientsInTurn = NIOLoopBoundBox.makeBoxSendingValue(0, as: Int.self, eventLoop: loop)
        func timed(
            _ name: String, concurrency: Int, service: String, params: [String], bodies: [ByteBuffer]
        ) async throws -> LoadResult {
            try await TimedLoadDriver.run(
                name: name, loop: loop, concurrency: concurrency, warmup: warmup, duration: duration,
                cloudProcess: cloudProcess
            ) { done in
                let body = bodies.count == 1 ? bodies[0] : bodies[Int.random(in: 0..<bodies.count)]
                clientsInTurn.value = (clientsInTurn.value + 1) % pool.count
                pool[clientsInTurn.value].call(body, service: service, params: params, timeout: .seconds(10))
                    .assumeIsolated()
                    .whenComplete { result in
                        if case .success = result { done(true) } else { done(false) }
                    }
            }
        }

        var echo: [Int: LoadResult] = [:]
        for concurrency in Set(writesOnly ? [writers] : [writers, readers]).sorted() {
            echo[concurrency] = try await timed(
                "Echo", concurrency: concurrency, service: BuiltinServices.echo, params: [], bodies: [echoPayload])
        }

        let document = Self.document(bytes: documentBytes)
        let readBodies = ids.map { id in
            switch readWith {
            case .count: ByteBuffer(string: #"{"_id":"\#(id)"}"#)
            case .read: ByteBuffer(string: #"{"filter":{"_id":"\#(id)"},"limit":1}"#)
            }
        }
        let readService = readWith == .count ? "Count" : "ReadCollection"
        var runs: [BenchDBReport.Run] = []
        for write in modes {
            let read: ReadConsistency = write == .one ? .local : .majority
            let added = try await timed(
                "AddDocument consistency=\(write)", concurrency: writers, service: "AddDocument",
                params: [writes, "consistency=\(write.rawValue)"], bodies: [document])
            runs.append(.init(mode: write.rawValue, operation: "AddDocument", result: added, echo: echo[writers]!))
            if writesOnly { continue }
            let found = try await timed(
                "\(readService) read=\(read)", concurrency: readers, service: readService,
                params: [reads, "read=\(read.rawValue)"], bodies: readBodies)
            runs.append(
                .init(
                    mode: write.rawValue, operation: "\(readService) (read=\(read))", result: found,
                    echo: echo[readers]!))
        }

        // Every replica should end with every document written: give replication a moment, then look.
        try await Task.sleep(for: .milliseconds(500))
        let stats = await client.collectStats()
        let held = stats.map { (try? $0.result.get())?.database?.documents[writes] ?? -1 }
        let replicas = stats.compactMap { try? $0.result.get().database }
        let pushes = replicas.map(\.pushesSent).reduce(0, +)
        let changesPerPush = pushes == 0 ? 0 : Double(replicas.map(\.changesPushed).reduce(0, +)) / Double(pushes)
        // Dropping the written collection frees every replica's copy of its documents: timed, since a
        // drop that held up the event loops would show here (and in the nodes suspecting each other).
        let dropStart = ContinuousClock.now
        _ = try? await client.call(ByteBuffer(), service: "DropCollection", params: [writes]).get()
        let dropped = ContinuousClock.now - dropStart
        _ = try? await client.call(ByteBuffer(), service: "DropCollection", params: [reads]).get()
        return BenchDBReport(
            nodes: addresses.count,
            cloud: local ? (dataDir == nil ? "local child, in memory" : "local child, durable") : "given",
            documentBytes: document.readableBytes, seconds: seconds, warmupSeconds: self.warmup,
            readOperation: readWith == .count
                ? #"Count {"_id": ID}"# : #"ReadCollection {"filter": {"_id": ID}, "limit": 1}"#,
            readCollectionDocuments: readDocuments, echo: echo.keys.sorted().map { echo[$0]! }, runs: runs,
            documentsHeldPerNode: held, clients: 1 + extras.count, changesPerPush: changesPerPush,
            antiEntropyKiBPerNode: replicas.map { Double($0.antiEntropyBytes) / 1024 },
            dropSeconds: dropped / .seconds(1),
            nodeResidentMiB: stats.compactMap { try? $0.result.get().residentBytes }.map { Double($0) / 1_048_576 })
    }

    /// Waits until every node sees every node alive: before that a node counts fewer replicas, and
    /// what it creates at consistency=all reaches only those it knows.
    static func waitForMembership(client: Client, nodes: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while true {
            let views = await client.collectStats().map { item in
                (try? item.result.get())?.members.filter { $0.status == "alive" }.count ?? 0
            }
            if views.allSatisfy({ $0 >= nodes }) { return }
            if ContinuousClock.now > deadline {
                throw ValidationError("the cloud did not converge: alive members per node \(views)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// A JSON document of exactly `bytes` bytes: a counter and padding.
    static func document(bytes: Int) -> ByteBuffer {
        let head = #"{"kind":"bench","n":42,"pad":""#
        let tail = #""}"#
        let padding = max(0, bytes - head.utf8.count - tail.utf8.count)
        return ByteBuffer(string: head + String(repeating: "x", count: padding) + tail)
    }
}

struct BenchDBReport: Codable {
    struct Run: Codable {
        var mode: String
        var operation: String
        var result: LoadResult
        /// Successful calls per second as a fraction of Echo's at the same concurrency.
        var ratioToEcho: Double

        init(mode: String, operation: String, result: LoadResult, echo: LoadResult) {
            self.mode = mode
            self.operation = operation
            self.result = result
            ratioToEcho = result.callsPerSecond / max(1, echo.callsPerSecond)
        }
    }

    var nodes: Int
    var cloud: String
    var documentBytes: Int
    var seconds: Double
    var warmupSeconds: Double
    var readOperation: String
    var readCollectionDocuments: Int
    var echo: [LoadResult]
    var runs: [Run]
    /// Documents of the written collection each node held at the end, warm-ups included (-1: no answer).
    var documentsHeldPerNode: [Int]
    /// Clients the calls were spread over, each with its own connection to every node.
    var clients: Int
    /// Changes per replication push over the whole run, every node (the batching under load).
    var changesPerPush: Double
    /// KiB each node received in anti-entropy answers over the whole run: little when pushes carry
    /// the writes and the pulls find nothing missing.
    var antiEntropyKiBPerNode: [Double]
    /// Seconds until the drop of the written collection (consistency majority) was answered.
    var dropSeconds: Double
    var nodeResidentMiB: [Double]

    var text: String {
        func ms(_ micros: UInt64) -> String { String(format: "%.2f", Double(micros) / 1000) }
        func cpu(_ r: LoadResult) -> String {
            guard let client = r.clientCPUMicrosPerCall else { return "-" }
            let cloud = r.cloudCPUMicrosPerCall.map { String(format: "%.0f", $0) } ?? "?"
            return cloud + "+" + String(format: "%.0f", client)
        }
        func row(_ mode: String, _ operation: String, _ r: LoadResult, _ ratio: Double) -> [String] {
            [
                mode, operation, "\(r.concurrency)", "\(Int(r.callsPerSecond.rounded()))", ms(r.p50Micros),
                ms(r.p99Micros), "\(r.failures)", String(format: ratio < 0.1 ? "%.1f%%" : "%.0f%%", ratio * 100),
                cpu(r),
            ]
        }
        let rows =
            echo.map { row("baseline", "Echo", $0, 1) }
            + runs.map { row($0.mode, $0.operation, $0.result, $0.ratioToEcho) }
        let table = TextTable.render(
            headers: [
                "mode", "operation", "in flight", "ops/s", "p50 ms", "p99 ms", "failures", "vs Echo",
                "CPU µs/op cloud+client",
            ], rows: rows)
        let memory = nodeResidentMiB.map { String(Int($0.rounded())) }.joined(separator: ", ")
        return """
            \(table)
            \(nodes) nodes (\(cloud)), \(clients) client\(clients == 1 ? "" : "s") with a connection to each; \(String(format: "%g", seconds)) s per run after \(String(format: "%g", warmupSeconds)) s warm-up; \
            ops/s counts successful calls completed in the window; CPU: the cloud's process (a local child) \
            and this one, CPU time over the window per successful call (steadier than ops/s on a noisy machine)
            writes: AddDocument of a \(documentBytes)-byte document (Echo carries the same payload)
            reads: \(readOperation) over a collection of \(readCollectionDocuments) documents, \
            a read of one document by id (an `_id` filter is answered by lookup, no scan)
            documents written, warm-ups included, as each node holds them at the end: \
            \(documentsHeldPerNode.map(String.init).joined(separator: ", "))
            replication pushes carried \(String(format: "%.1f", changesPerPush)) changes each on average (whole run)
            anti-entropy answers received per node over the whole run (KiB): \
            \(antiEntropyKiBPerNode.map { String(Int($0.rounded())) }.joined(separator: ", "))
            dropping the written collection afterwards (majority) was answered in \(String(format: "%.3f", dropSeconds)) s
            node process resident memory (MiB): \(memory)
            """
    }
}
