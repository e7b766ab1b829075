import DistriCore
import DistriIdentity
import DistriTestSupport
import Foundation
import Testing

/// A `distri-node run` process on a namespaced test host, stopped (or killed) by its PID.
final class HostedNode {
    let id: String
    let host: TestNetwork.Host
    let address: String
    private(set) var process: Process
    private let network: TestNetwork
    private let arguments: [String]

    init(_ id: String, on host: TestNetwork.Host, network: TestNetwork, seeds: [HostedNode], extra: [String]) throws {
        self.id = id
        self.host = host
        self.network = network
        self.address = "\(host.address):7000"
        var arguments = ["run", "--listen", "0.0.0.0:7000", "--id", id, "--test-services", "--log-level", "warning"]
        if !seeds.isEmpty { arguments += ["--seeds", seeds.map(\.address).joined(separator: ",")] }
        self.arguments = arguments + (try E2ETLS.nodeArguments(id)) + extra
        self.process = Process()
        try launch()
    }

    private func launch() throws {
        let process = network.process(on: host, executable: builtExecutable("distri-node").path, arguments: arguments)
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = Pipe()
        try process.run()
        self.process = process
        let advertised = try listeningAddress(of: process, output: output, name: "node \(id) on \(host)")
        // Listening on 0.0.0.0, the node advertises the address of its route to the seeds (or its
        // interface, for the first): the host's own address.
        #expect(advertised == address, "node \(id) advertises \(advertised)")
    }

    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() { stopProcess(process) }
}

/// Clouds and peers on namespaced hosts with real latency, jitter and loss between them.
@Suite(.serialized, .enabled(if: TestNetwork.isAvailable, "needs network namespaces (root or CAP_NET_ADMIN)"))
struct WANProcessTests {
    private static let sampleImage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../sample-images/rgb8.png").standardizedFileURL.path

    private static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    private static func row(_ csv: String) -> [String: String] {
        let lines = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        guard lines.count >= 2 else { return [:] }
        return Dictionary(uniqueKeysWithValues: zip(lines[0].map(String.init), lines[1].map(String.init)))
    }

    /// Each node's view of the membership, from `distri-node members --json` run on `host`: node id →
    /// (member id → status, detection ms).
    private static func members(
        on host: TestNetwork.Host, network: TestNetwork, cloud: String
    ) -> [String: [String: (status: String, detection: Int?)]] {
        guard
            let result = try? network.run(
                on: host, executable: builtExecutable("distri-node").path,
                arguments: ["members", "--cloud", cloud, "--ca", E2ETLS.caFile, "--json"], timeout: 30),
            let views = (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [[String: Any]]
        else { return [:] }
        var table: [String: [String: (status: String, detection: Int?)]] = [:]
        for view in views {
            guard let node = view["nodeID"] as? String, let members = view["members"] as? [[String: Any]] else {
                continue
            }
            var row: [String: (status: String, detection: Int?)] = [:]
            for member in members {
                guard let id = member["id"] as? String, let status = member["status"] as? String else { continue }
                row[id] = (status, member["detectionMillis"] as? Int)
            }
            table[node] = row
        }
        return table
    }

    /// A deposit key file shared by the nodes (view grants open on any of them).
    private static func depositKey(in root: URL) throws -> [String] {
        let file = root.appendingPathComponent("deposit.key").path
        try Hex.encode(try AgreementKeyPair.generate().privateKey).write(
            toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        return ["--deposit-key-file", file]
    }

    @Test(
        "3 nodes on 3 hosts 40 ms apart (jitter, 1% loss), alice and carol on two more: the seed's DB and Encrypt tests with 0 failed tasks, and the peer story with one node's link cut in the middle"
    )
    func cloudAcrossHosts() async throws {
        let network = try TestNetwork.make(prefix: "wan")
        defer { network.teardown() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("distri-wan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        // 10 ms one way on each host's link: 40 ms round trip between any two hosts.
        let hosts = try (1...3).map { try network.addHost("n\($0)", delayMillis: 10, jitterMillis: 3, lossPercent: 1) }
        let alice = try network.addHost("alice", delayMillis: 10, jitterMillis: 3, lossPercent: 1)
        let carol = try network.addHost("carol", delayMillis: 10, jitterMillis: 3, lossPercent: 1)
        let keys = try Self.depositKey(in: root)
        var nodes: [HostedNode] = []
        defer { for node in nodes { node.stop() } }
        nodes.append(try HostedNode("node-1", on: hosts[0], network: network, seeds: [], extra: keys))
        for index in 1...2 {
            nodes.append(
                try HostedNode("node-\(index + 1)", on: hosts[index], network: network, seeds: [nodes[0]], extra: keys))
        }
        let cloud = nodes.map(\.address).joined(separator: ",")
        let formed = await poll(timeout: .seconds(60), every: .milliseconds(500)) {
            let table = Self.members(on: alice, network: network, cloud: cloud)
            return table.count == 3 && table.values.allSatisfy { $0.values.filter { $0.status == "alive" }.count == 3 }
        }
        #expect(formed, "the cloud formed across the hosts")

        // The seed's DB and Encrypt tests, from alice's host (`distri-bench`).
        func bench(_ arguments: [String], on host: TestNetwork.Host = alice) throws -> (status: Int32, output: String) {
            let result = try network.run(
                on: host, executable: builtExecutable("distri-bench").path, arguments: arguments, timeout: 180)
            return (result.status, result.output + result.errors)
        }
        let db = try bench([
            "example", "--mode", "client", "--test", "test-client-db", "--n", "20", "--ips", cloud, "--ca",
            E2ETLS.caFile, "--csv",
        ])
        let dbRow = Self.row(db.output)
        #expect(db.status == 0 && dbRow["failed_tasks"] == "0", "\(db.output)")
        #expect(dbRow["documents_on_every_node"] == dbRow["documents_acknowledged"], "\(db.output)")
        let encrypt = try bench([
            "example", "--mode", "client", "--test", "test-client-encrypt", "--n", "4", "--ips", cloud, "--ca",
            E2ETLS.caFile, "--csv",
        ])
        let encryptRow = Self.row(encrypt.output)
        #expect(encrypt.status == 0 && encryptRow["failed_tasks"] == "0", "\(encrypt.output)")
        // Latency across the links against their round trip (the floor): one call at a time.
        let calls = try bench([
            "calls", "--cloud", cloud, "--ca", E2ETLS.caFile, "--calls", "200", "--concurrency", "1",
        ])
        #expect(calls.status == 0, "\(calls.output)")
        let writes = try bench([
            "db", "--cloud", cloud, "--ca", E2ETLS.caFile, "--writers", "1", "--readers", "1", "--seconds",
            "3",
            "--warmup", "0.5", "--modes", "majority", "--writes-only",
        ])
        #expect(writes.status == 0, "\(writes.output)")
        print("WAN 40 ms RTT (the floor), small calls one at a time:\n\(calls.output)")
        print("WAN 40 ms RTT, majority writes one at a time:\n\(writes.output)")
        print("WAN 40 ms: seed DB test \(dbRow)")
        print("WAN 40 ms: seed Encrypt test \(encryptRow)")

        // The peer story between alice's and carol's hosts, each daemon on 0.0.0.0.
        let homes = [
            "alice": root.appendingPathComponent("alice").path, "carol": root.appendingPathComponent("carol").path,
        ]
        let peerHosts = ["alice": alice, "carol": carol]
        func peer(_ name: String, _ arguments: String...) throws -> (status: Int32, output: String, errors: String) {
            try network.run(
                on: peerHosts[name]!, executable: builtExecutable("distri-peer").path,
                arguments: arguments + ["--home", homes[name]!, "--cloud", cloud, "--ca", E2ETLS.caFile], timeout: 120)
        }
        var daemons: [Process] = []
        defer { for daemon in daemons { stopProcess(daemon) } }
        for name in ["alice", "carol"] {
            let made = try network.run(
                on: peerHosts[name]!, executable: builtExecutable("distri-peer").path,
                arguments: ["init", "--name", name, "--home", homes[name]!])
            #expect(made.status == 0, "init \(name): \(made.errors)")
            let daemon = network.process(
                on: peerHosts[name]!, executable: builtExecutable("distri-peer").path,
                arguments: [
                    "serve", "--home", homes[name]!, "--cloud", cloud, "--ca", E2ETLS.caFile, "--listen", "0.0.0.0:0",
                    "--refresh", "1",
                ])
            let output = Pipe()
            daemon.standardOutput = output
            try daemon.run()
            daemons.append(daemon)
            let bound = try listeningAddress(of: daemon, output: output, name: "\(name)'s daemon")
            #expect(bound.hasPrefix("0.0.0.0:"))
        }
        let listed = try network.run(
            on: alice, executable: builtExecutable("distri-peer").path,
            arguments: ["list", "peers", "--json", "--cloud", cloud, "--ca", E2ETLS.caFile])
        #expect(listed.output.contains(carol.address), "carol advertises her host's address: \(listed.output)")
        let encrypted = try peer("alice", "encrypt", Self.sampleImage, "--json")
        #expect(encrypted.status == 0, "encrypt: \(encrypted.errors)")
        let sent = try peer("alice", "send", "rgb8", "--to", "carol", "--views", "2", "--json")
        #expect(Self.object(sent.output)["status"] as? String == "delivered", "send: \(sent.output) \(sent.errors)")
        let original = try Data(contentsOf: URL(fileURLWithPath: Self.sampleImage))
        func view() throws -> (status: Int32, errors: String, bytes: Data?) {
            let out = root.appendingPathComponent("view-\(UUID().uuidString).png").path
            let result = try peer("carol", "view", "rgb8", "--from", "alice", "--out", out, "--json")
            return (result.status, result.errors, FileManager.default.contents(atPath: out))
        }
        let first = try view()
        #expect(first.status == 0 && first.bytes == original, "first view: \(first.errors)")
        // One node's host is cut off: the second view goes through the other two.
        try network.cut(hosts[1])
        let second = try view()
        #expect(second.status == 0 && second.bytes == original, "second view with node-2's link cut: \(second.errors)")
        let third = try view()
        #expect(
            third.status != 0 && third.bytes == nil && third.errors.contains("no views left"), "third: \(third.errors)")
        try network.restore(hosts[1])
    }

    @Test(
        "5 nodes on hosts 100 ms apart (20 ms jitter, 2% loss): nobody declared dead for a minute; a node killed -9 is declared dead by all"
    )
    func membershipOnWAN() async throws {
        let network = try TestNetwork.make(prefix: "swim")
        defer { network.teardown() }
        // 25 ms one way on each link (±5 ms): 100 ms round trip ±20 ms; 1% on each link, 2% a path.
        let hosts = try (1...5).map { try network.addHost("m\($0)", delayMillis: 25, jitterMillis: 5, lossPercent: 1) }
        var nodes: [HostedNode] = []
        defer { for node in nodes { node.stop() } }
        nodes.append(try HostedNode("node-1", on: hosts[0], network: network, seeds: [], extra: []))
        for index in 1..<5 {
            nodes.append(
                try HostedNode("node-\(index + 1)", on: hosts[index], network: network, seeds: [nodes[0]], extra: []))
        }
        let cloud = nodes.map(\.address).joined(separator: ",")
        let ids = Set(nodes.map(\.id))
        func allAlive() -> Bool {
            let table = Self.members(on: hosts[0], network: network, cloud: cloud)
            return table.count == 5 && table.values.allSatisfy { row in ids.allSatisfy { row[$0]?.status == "alive" } }
        }
        #expect(await poll(timeout: .seconds(60), every: .milliseconds(500)) { allAlive() }, "the cloud formed")
        // A minute of WAN weather (scripts/wan-membership.sh runs the ten minutes): nobody suspected dead.
        let clock = ContinuousClock()
        let start = clock.now
        var checks = 0
        var falseDeaths: [String] = []
        while clock.now - start < .seconds(60) {
            let table = Self.members(on: hosts[0], network: network, cloud: cloud)
            for (observer, row) in table {
                for (member, state) in row where state.status == "dead" {
                    falseDeaths.append("\(observer) saw \(member) dead")
                }
            }
            checks += 1
            try await Task.sleep(for: .seconds(2))  // the sampling pace of a soak, not synchronisation
        }
        #expect(falseDeaths.isEmpty, "\(falseDeaths)")
        // Kill one: every other node declares it dead, within the documented bound.
        let killed = clock.now
        nodes[4].kill9()
        let others = Array(nodes.prefix(4))
        var detected = false
        var table: [String: [String: (status: String, detection: Int?)]] = [:]
        for _ in 0..<60 where !detected {
            table = Self.members(on: hosts[0], network: network, cloud: others.map(\.address).joined(separator: ","))
            detected = table.count == 4 && table.values.allSatisfy { $0["node-5"]?.status == "dead" }
            if !detected { try await Task.sleep(for: .milliseconds(250)) }
        }
        let elapsed = clock.now - killed
        let reported = table.values.compactMap { $0["node-5"]?.detection }
        #expect(detected, "node-5 declared dead by all: \(table.mapValues { $0["node-5"]?.status ?? "-" })")
        #expect(elapsed < .seconds(15), "dead by all after \(elapsed)")
        print(
            "WAN membership (5 hosts, 100 ms RTT, 20 ms jitter, 2% loss): \(checks) checks over a minute, no false death; "
                + "node-5 killed -9, dead at all 4 within \(elapsed) (polled), detection per node \(reported.sorted()) ms"
        )
    }
}
