import Distri
import DistriTestSupport
import Foundation
import NIOCore
import Testing

/// A node started with `metricsListen` serves `/metrics` in the Prometheus text format, and its
/// counters move by exactly the calls made.
@Suite struct MetricsTests {
    /// `GET path` over plain HTTP; the status line and the body.
    static func get(_ path: String, from address: NodeAddress) async throws -> (status: String, body: String) {
        let request = "GET \(path) HTTP/1.1\r\nHost: \(address)\r\n\r\n"
        let (received, _) = try await rawExchange(ByteBuffer(string: request), with: address, plain: true)
        let text = String(buffer: received)
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (
            parts.first?.components(separatedBy: "\r\n").first ?? "", parts.dropFirst().joined(separator: "\r\n\r\n")
        )
    }

    /// The samples of a Prometheus text exposition, by name with labels (`name{a="b",c="d"}`), after
    /// checking every line against the format.
    static func samples(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        var typed: Set<String> = []
        for line in text.split(separator: "\n") {
            if let type = line.wholeMatch(
                of: /# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)/)
            {
                typed.insert(String(type.1))
                continue
            }
            if line.hasPrefix("# HELP ") { continue }
            guard
                let sample = line.wholeMatch(
                    of:
                        /([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)/
                ),
                let value = Double(sample.3)
            else {
                Issue.record("not a Prometheus sample line: \(line)")
                continue
            }
            let family = String(sample.1).replacing(/_(bucket|sum|count)$/, with: "")
            #expect(
                typed.contains(String(sample.1)) || typed.contains(family), "\(sample.1) has no # TYPE line before it")
            samples[String(sample.1) + String(sample.2 ?? "")] = value
        }
        return samples
    }

    @Test("/metrics parses as Prometheus text and its counters move by exactly the calls made")
    func countersMoveByTheCalls() async throws {
        try await withCloud(
            nodes: 1, insecure: true, configure: { $0.metricsListen = NodeAddress(host: "127.0.0.1", port: 0) }
        ) { nodes, addresses in
            let metrics = try #require(nodes[0].metricsAddress)
            let client = Client(nodes: addresses, configuration: ClientConfiguration(membershipRefresh: nil))
            for _ in 0..<25 { _ = try await client.send([1, 2, 3], service: "Echo") }
            let first = try await Self.get("/metrics", from: metrics)
            #expect(first.status.hasPrefix("HTTP/1.1 200"), "\(first.status)")
            let before = Self.samples(first.body)
            #expect(before[#"distri_calls_total{service="Echo",outcome="ok"}"#] == 25)
            #expect(before[#"distri_service_time_seconds_count{service="Echo"}"#] == 25)
            #expect(before[#"distri_service_time_seconds_bucket{service="Echo",le="+Inf"}"#] == 25)
            #expect(before[#"distri_members{status="alive"}"#] != nil)
            // The node-wide buffer budget: its size and, between calls, nothing held.
            #expect((before["distri_buffer_budget_bytes"] ?? 0) > 0)
            #expect(before["distri_buffer_budget_used_bytes"] != nil)
            #expect(before["distri_buffer_budget_refusals_total"] == 0)

            for _ in 0..<10 { _ = try await client.send([4], service: "Echo") }
            await #expect(throws: ClientError.self) { _ = try await client.send([], service: "NoSuchService") }
            let after = Self.samples(try await Self.get("/metrics", from: metrics).body)
            #expect(after[#"distri_calls_total{service="Echo",outcome="ok"}"#] == 35)
            let received = { (samples: [String: Double]) in samples["distri_requests_received_total"] ?? -1 }
            #expect(received(after) - received(before) == 11, "10 Echo calls and one to an unknown service")
            #expect((after["distri_requests_failed_total"] ?? 0) - (before["distri_requests_failed_total"] ?? 0) == 1)
            // The Stats service reports the same counts.
            let stats = nodes[0].stats()
            #expect(stats.calls?["Echo"]?["ok"] == 35)
            #expect(Double(stats.requestsReceived) == received(after))

            #expect(try await Self.get("/other", from: metrics).status.hasPrefix("HTTP/1.1 404"))

            // A collection's gauge follows the collection: present while it lives, gone once dropped.
            let database = DocumentDatabase(client: client)
            try await database.createCollection("pets")
            _ = try await database.add(["name": "Rex"], to: "pets")
            let live = Self.samples(try await Self.get("/metrics", from: metrics).body)
            #expect(live[#"distri_db_documents{collection="pets"}"#] == 1)
            try await database.dropCollection("pets")
            let dropped = Self.samples(try await Self.get("/metrics", from: metrics).body)
            #expect(dropped[#"distri_db_documents{collection="pets"}"#] == nil)
            if let parsed = Self.pythonParse(first.body) {
                #expect(parsed.status == 0, "prometheus_client could not parse it: \(parsed.output)")
            }
            await client.shutdown()
        }
    }

    @Test("a peer's endpoint serves its own metrics: calls by service and outcome")
    func peerEndpointMetrics() async throws {
        let services = ServiceRegistry()
        services.register(RegisteredService(name: "Echo", execution: .inline { $0.data }))
        let endpoint = PeerEndpoint(services: services)
        let address = try await endpoint.start(host: "127.0.0.1", port: 0)
        let metrics = try await MetricsEndpoint.serve(NodeAddress(host: "127.0.0.1", port: 0)) { endpoint.stats() }
        let client = Client(nodes: [address], configuration: ClientConfiguration(membershipRefresh: nil))
        for _ in 0..<5 { _ = try await client.send([9], service: "Echo") }
        let samples = Self.samples(try await Self.get("/metrics", from: metrics.address).body)
        #expect(samples[#"distri_calls_total{service="Echo",outcome="ok"}"#] == 5)
        #expect(samples["distri_requests_received_total"] == 5)
        await client.shutdown()
        metrics.close()
        await endpoint.shutdown()
    }

    @Test("a majority write moves the WAL's bytes and syncs, a conditional update the CAS rounds and conflicts")
    func databaseCounters() async throws {
        let directory = TemporaryDirectory("metrics-wal")
        defer { directory.remove() }
        var index = 0
        try await withCloud(
            nodes: 3, clustered: true, insecure: true,
            configure: {
                index += 1
                $0.dataDirectory = directory.path + "/node\(index)"
                $0.metricsListen = NodeAddress(host: "127.0.0.1", port: 0)
            }
        ) { nodes, addresses in
            let metrics = try #require(nodes[0].metricsAddress)
            let client = Client(nodes: [addresses[0]], configuration: ClientConfiguration(membershipRefresh: nil))
            let database = DocumentDatabase(client: client)
            let before = Self.samples(try await Self.get("/metrics", from: metrics).body)
            try await database.createCollection("pets")
            _ = try await database.add(["_id": "rex", "name": "Rex", "visits": 0], to: "pets")
            let written = Self.samples(try await Self.get("/metrics", from: metrics).body)
            let bytes = { (samples: [String: Double]) in samples["distri_wal_appended_bytes_total"] ?? 0 }
            let syncs = { (samples: [String: Double]) in samples["distri_wal_fsyncs_total"] ?? 0 }
            #expect(bytes(written) > bytes(before), "a majority write is logged before it is acknowledged")
            #expect(syncs(written) > syncs(before))
            #expect((written["distri_wal_fsync_seconds_total"] ?? 0) > 0)
            let rounds = { (samples: [String: Double]) in samples["distri_db_cas_rounds_total"] ?? -1 }
            #expect(rounds(written) == 0)

            // A conditional update that holds runs at least one round; one that does not is a conflict.
            let updated = try await database.update("rex", in: "pets", increment: ["visits": 1], if: ["visits": 0])
            #expect(updated?["visits"] == 1)
            #expect(
                await remoteCode {
                    _ = try await database.update("rex", in: "pets", increment: ["visits": 1], if: ["visits": 0])
                } == .conflict)
            let after = Self.samples(try await Self.get("/metrics", from: metrics).body)
            #expect(rounds(after) >= 2, "two conditional updates, each at least one round")
            #expect(after[#"distri_db_cas_conflicts_total{reason="condition"}"#] == 1)
            #expect(after[#"distri_db_cas_conflicts_total{reason="contention"}"#] != nil)
            // The Stats service reports the same numbers.
            let stats = try #require(nodes[0].stats().database)
            #expect(Double(stats.compareAndSet?.rounds ?? 0) == rounds(after))
            #expect(Double(stats.writeAheadLog?.bytesAppended ?? 0) >= bytes(after))
            if let parsed = Self.pythonParse(try await Self.get("/metrics", from: metrics).body) {
                #expect(parsed.status == 0, "prometheus_client could not parse it: \(parsed.output)")
            }
            await client.shutdown()
        }
    }

    @Test("a member cut off from the others is suspected and then declared dead, and the counters show it")
    func membershipCounters() async throws {
        try await withCloud(
            nodes: 3, clustered: true, insecure: true,
            configure: { $0.metricsListen = NodeAddress(host: "127.0.0.1", port: 0) }
        ) { nodes, _ in
            let metrics = try #require(nodes[0].metricsAddress)
            // A busy machine may have suspected a healthy member while the cloud formed: count from here.
            let before = Self.samples(try await Self.get("/metrics", from: metrics).body)
            let suspected = { (samples: [String: Double]) in samples["distri_members_suspected_total"] ?? -1 }
            let dead = { (samples: [String: Double]) in samples["distri_members_declared_dead_total"] ?? -1 }
            #expect(suspected(before) >= 0 && dead(before) >= 0, "both counters are served")
            nodes[2].goDark(for: .seconds(60))
            let lost = nodes[2].id
            let detected = await eventually(timeout: .seconds(30)) {
                nodes[0].stats().members.contains { $0.id == lost && $0.status == "dead" }
            }
            #expect(detected, "node 0 did not declare the dark node dead")
            let after = Self.samples(try await Self.get("/metrics", from: metrics).body)
            #expect(suspected(after) - suspected(before) >= 1, "suspected before it was declared dead")
            #expect(dead(after) - dead(before) >= 1)
            #expect(
                Double(nodes[0].stats().cluster.membersDeclaredDead) >= after["distri_members_declared_dead_total"] ?? 0
            )
        }
    }

    @Test("stats from a node of an earlier version, without the newer counters, still decode")
    func olderStatsDecode() throws {
        var stats = NodeStats(nodeID: "n1", address: "127.0.0.1:7000")
        stats.cluster.membersSuspected = 3
        stats.database = DatabaseStats(
            documents: [:], tombstones: 0, replicationLag: [:], antiEntropyBytes: 0, antiEntropyChanges: 0,
            changeSequence: 0, durable: true, recoveredEntries: 0, storageError: nil)
        stats.database?.writeAheadLog = WriteAheadLogStats(bytesAppended: 10, syncs: 1, syncSeconds: 0.001)
        stats.database?.compareAndSet = CompareAndSetStats(rounds: 2)
        #expect(try JSONDecoder().decode(NodeStats.self, from: JSONEncoder().encode(stats)) == stats)

        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(stats)) as? [String: Any])
        var cluster = try #require(json["cluster"] as? [String: Any])
        cluster["membersSuspected"] = nil
        cluster["membersDeclaredDead"] = nil
        json["cluster"] = cluster
        var database = try #require(json["database"] as? [String: Any])
        database["writeAheadLog"] = nil
        database["compareAndSet"] = nil
        json["database"] = database
        let old = try JSONDecoder().decode(NodeStats.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.cluster.membersSuspected == 0)
        #expect(old.database?.writeAheadLog == nil)
        #expect(old.database?.compareAndSet == nil)
    }

    @Test("swift-metrics goes through the node's own registry, and the process is bootstrapped at most once")
    func swiftMetricsFactory() async throws {
        let first = NodeMetrics()
        let second = NodeMetrics()
        // A metric made through one node's factory shows on that node's /metrics only.
        first.factory.makeCounter(label: "library_events_total", dimensions: [("kind", "a")]).increment(by: 3)
        let stats = NodeStats(nodeID: "n1", address: "127.0.0.1:7000")
        let mine = Self.samples(String(decoding: first.render(stats), as: UTF8.self))
        let other = Self.samples(String(decoding: second.render(stats), as: UTF8.self))
        #expect(mine[#"library_events_total{kind="a"}"#] == 3)
        #expect(other[#"library_events_total{kind="a"}"#] == nil)
        #expect(mine["distri_requests_received_total"] == 0)
        // Whichever bootstrapped the process first, a later bootstrap is refused instead of crashing.
        _ = first.bootstrapProcessMetrics()
        #expect(!second.bootstrapProcessMetrics())
        #expect(!first.bootstrapProcessMetrics())
    }

    /// Parses with Python's `prometheus_client.parser` when it is installed (nil when not).
    static func pythonParse(_ text: String) -> (status: Int32, output: String)? {
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            families = list(text_string_to_metric_families(sys.stdin.read()))
            print(len(families))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import prometheus_client"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            print("prometheus_client is not installed: the text was checked by the format's grammar only")
            return nil
        }
        let parse = Process()
        parse.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        parse.arguments = ["python3", "-c", script]
        let input = Pipe()
        let output = Pipe()
        parse.standardInput = input
        parse.standardOutput = output
        parse.standardError = output
        guard (try? parse.run()) != nil else { return nil }
        input.fileHandleForWriting.write(Data(text.utf8))
        try? input.fileHandleForWriting.close()
        let result = output.fileHandleForReading.readDataToEndOfFile()
        parse.waitUntilExit()
        return (parse.terminationStatus, String(decoding: result, as: UTF8.self))
    }
}
