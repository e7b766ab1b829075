import DistriCore
import DistriIdentity
import DistriImaging
import DistriTestSupport
import Foundation
import Testing

/// Peers behind NAT gateways on namespaced hosts: the reachability check, the cloud's relay, and the
/// mailbox, with real processes.
@Suite(.serialized, .enabled(if: TestNetwork.isAvailable, "needs network namespaces (root or CAP_NET_ADMIN)"))
struct NATProcessTests {
    private static let sampleImage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../sample-images/rgb8.png").standardizedFileURL.path

    /// A cloud of 3 nodes on 3 hosts 40 ms apart (±3 ms jitter, 1% loss per link); carol on an open
    /// host, alice behind one NAT gateway and bob behind another (each gateway's link as a host's).
    struct World {
        let network: TestNetwork
        let root: URL
        let nodes: [HostedNode]
        let cloud: String
        let hosts: [String: TestNetwork.Host]
        let gateways: [String: TestNetwork.Host]

        func home(_ name: String) -> String { root.appendingPathComponent(name).path }

        /// Runs `distri-peer ARGUMENTS --home HOME(name) --cloud CLOUD --ca CA` on `name`'s host.
        func peer(_ name: String, _ arguments: [String], timeout: TimeInterval = 180) throws -> (
            status: Int32, output: String, errors: String
        ) {
            try network.run(
                on: hosts[name]!, executable: builtExecutable("distri-peer").path,
                arguments: arguments + ["--home", home(name), "--cloud", cloud, "--ca", E2ETLS.caFile],
                timeout: timeout)
        }

        /// `distri-peer serve` on `name`'s host, listening on 0.0.0.0 (stopped by the caller, by PID).
        func serve(_ name: String) throws -> Process {
            let daemon = network.process(
                on: hosts[name]!, executable: builtExecutable("distri-peer").path,
                arguments: [
                    "serve", "--home", home(name), "--cloud", cloud, "--ca", E2ETLS.caFile, "--listen", "0.0.0.0:0",
                    "--refresh", "1",
                ])
            let output = Pipe()
            daemon.standardOutput = output
            try daemon.run()
            _ = try listeningAddress(of: daemon, output: output, name: "\(name)'s daemon")
            return daemon
        }

        /// Each node's stats (`distri-node stats --json`, from carol's host), by node id.
        func stats() -> [String: [String: Any]] {
            guard
                let result = try? network.run(
                    on: hosts["carol"]!, executable: builtExecutable("distri-node").path,
                    arguments: ["stats", "--cloud", cloud, "--ca", E2ETLS.caFile, "--json"], timeout: 30),
                let rows = (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [[String: Any]]
            else { return [:] }
            var table: [String: [String: Any]] = [:]
            for row in rows {
                if let stats = row["stats"] as? [String: Any], let id = stats["nodeID"] as? String { table[id] = stats }
            }
            return table
        }

        /// `list peers --json` from carol's host: name → (status, reachable).
        func peers() -> [String: (status: String, reachable: Bool?)] {
            guard
                let listed = try? network.run(
                    on: hosts["carol"]!, executable: builtExecutable("distri-peer").path,
                    arguments: ["list", "peers", "--json", "--cloud", cloud, "--ca", E2ETLS.caFile], timeout: 30),
                let rows = (try? JSONSerialization.jsonObject(with: Data(listed.output.utf8))) as? [[String: Any]]
            else { return [:] }
            var table: [String: (String, Bool?)] = [:]
            for row in rows {
                if let name = row["name"] as? String {
                    table[name] = (row["status"] as? String ?? "", (row["reachable"] as? NSNumber)?.boolValue)
                }
            }
            return table
        }
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// A PNG of noise (incompressible), `side` pixels square.
    static func noisePNG(side: Int) throws -> [UInt8] {
        var generator = SplitMix64(seed: 22)
        var pixels = [UInt8](repeating: 255, count: side * side * 4)
        for index in pixels.indices where index % 4 != 3 { pixels[index] = UInt8(truncatingIfNeeded: generator.next()) }
        return try PNGCodec.encode(RGBAImage(width: side, height: side, pixels: pixels))
    }

    static func withWorld(nodeArguments: [String] = [], _ body: (World) async throws -> Void) async throws {
        let network = try TestNetwork.make(prefix: "nat")
        defer { network.teardown() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("distri-nat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let cloudHosts = try (1...3).map {
            try network.addHost("n\($0)", delayMillis: 10, jitterMillis: 3, lossPercent: 1)
        }
        let carol = try network.addHost("carol", delayMillis: 10, jitterMillis: 3, lossPercent: 1)
        let gw1 = try network.addNATGateway("gw1", delayMillis: 10, jitterMillis: 3, lossPercent: 1)
        let gw2 = try network.addNATGateway("gw2", delayMillis: 10, jitterMillis: 3, lossPercent: 1)
        let alice = try network.addHost("alice", behind: gw1)
        let bob = try network.addHost("bob", behind: gw2)
        let keyFile = root.appendingPathComponent("deposit.key").path
        try Hex.encode(try AgreementKeyPair.generate().privateKey).write(
            toFile: keyFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile)
        let extra = ["--deposit-key-file", keyFile] + nodeArguments
        var nodes: [HostedNode] = []
        defer { for node in nodes { node.stop() } }
        nodes.append(try HostedNode("node-1", on: cloudHosts[0], network: network, seeds: [], extra: extra))
        for index in 1...2 {
            nodes.append(
                try HostedNode(
                    "node-\(index + 1)", on: cloudHosts[index], network: network, seeds: [nodes[0]], extra: extra))
        }
        let world = World(
            network: network, root: root, nodes: nodes, cloud: nodes.map(\.address).joined(separator: ","),
            hosts: ["alice": alice, "bob": bob, "carol": carol], gateways: ["alice": gw1, "bob": gw2])
        let formed = await poll(timeout: .seconds(60), every: .milliseconds(500)) { world.stats().count == 3 }
        #expect(formed, "the cloud answers from carol's host")
        for name in ["alice", "bob", "carol"] {
            let made = try network.run(
                on: world.hosts[name]!, executable: builtExecutable("distri-peer").path,
                arguments: ["init", "--name", name, "--home", world.home(name)])
            #expect(made.status == 0, "init \(name): \(made.errors)")
        }
        try await body(world)
    }

    @Test(
        "3 nodes 40 ms apart (jitter, 1% loss), alice and bob behind two NAT gateways, carol open: the check finds who can be dialled; alice sends to carol directly and to bob through the cloud; bob views it byte-exact; the relaying node killed -9 mid-delivery, the delivery resumes through another node; a send to offline bob arrives from the mailbox after alice left; a second sender over bob's mailbox quota is refused"
    )
    func relayAcrossNATs() async throws {
        try await Self.withWorld(nodeArguments: ["--mailbox-mib-per-recipient", "12"]) { world in
            var daemons: [String: Process] = [:]
            defer { for daemon in daemons.values { stopProcess(daemon) } }
            // Bob's daemon first, alone, so the node holding his relay link is the one with a link.
            daemons["bob"] = try world.serve("bob")
            func linked() -> [String: Int] {
                world.stats().compactMapValues { ($0["relay"] as? [String: Any])?["attachedPeers"] as? Int }
            }
            #expect(await poll(timeout: .seconds(30), every: .milliseconds(200)) { linked().values.reduce(0, +) == 1 })
            let holder = try #require(linked().first { $0.value == 1 }?.key, "a node holds bob's relay link")
            for name in ["alice", "carol"] { daemons[name] = try world.serve(name) }
            var listed: [String: (status: String, reachable: Bool?)] = [:]
            let checked = await poll(timeout: .seconds(30), every: .milliseconds(500)) {
                listed = world.peers()
                return listed.count == 3 && listed.values.allSatisfy { $0.reachable != nil }
            }
            #expect(checked, "\(listed)")
            #expect(listed["alice"]?.reachable == false && listed["bob"]?.reachable == false, "\(listed)")
            #expect(listed["carol"]?.reachable == true, "\(listed)")

            let encrypted = try world.peer("alice", ["encrypt", Self.sampleImage, "--json"])
            #expect(encrypted.status == 0, "encrypt: \(encrypted.errors)")
            let original = try Data(contentsOf: URL(fileURLWithPath: Self.sampleImage))
            func view(_ name: String, _ image: String) throws -> Data? {
                let out = world.root.appendingPathComponent("view-\(UUID().uuidString).png").path
                let viewed = try world.peer(name, ["view", image, "--from", "alice", "--out", out, "--json"])
                #expect(viewed.status == 0, "\(name) views \(image): \(viewed.errors)")
                return FileManager.default.contents(atPath: out)
            }

            let toCarol = Self.object(
                try world.peer("alice", ["send", "rgb8", "--to", "carol", "--views", "1", "--json"]).output)
            #expect(toCarol["status"] as? String == "delivered" && toCarol["path"] as? String == "direct", "\(toCarol)")
            #expect(try view("carol", "rgb8") == original)
            let toBob = Self.object(
                try world.peer("alice", ["send", "rgb8", "--to", "bob", "--views", "1", "--json"]).output)
            #expect(toBob["status"] as? String == "delivered" && toBob["path"] as? String == "relayed", "\(toBob)")
            #expect(try view("bob", "rgb8") == original, "bob views the relayed image byte-exact")

            // A larger image, bob's link slowed to 8 Mbit/s so the delivery lasts seconds; the node
            // holding bob's relay link is killed a quarter of the way in.
            let big = world.root.appendingPathComponent("big.png")
            let noise = try Self.noisePNG(side: 900)
            try Data(noise).write(to: big)
            let bigEncrypted = try world.peer("alice", ["encrypt", big.path, "--as", "big", "--json"])
            #expect(bigEncrypted.status == 0, "encrypt big: \(bigEncrypted.errors)")
            let sealedSize =
                (try? FileManager.default.attributesOfItem(atPath: "\(world.home("alice"))/images/big.png")[.size]
                    as? Int) ?? 0
            #expect(sealedSize > 1 << 20)
            try world.network.setRate(world.gateways["bob"]!, mbit: 8)
            let sending = world.network.process(
                on: world.hosts["alice"]!, executable: builtExecutable("distri-peer").path,
                arguments: [
                    "send", "big", "--to", "bob", "--views", "1", "--json", "--home", world.home("alice"), "--cloud",
                    world.cloud, "--ca", E2ETLS.caFile,
                ])
            let sendOutput = Pipe()
            sending.standardOutput = sendOutput
            try sending.run()
            defer { stopProcess(sending) }
            let partialDirectory = "\(world.home("bob"))/received/alice"
            func partialSize() -> Int {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: partialDirectory)) ?? []
                return names.filter { $0.hasPrefix("big.png.") && $0.hasSuffix(".part") }.compactMap {
                    try? FileManager.default.attributesOfItem(atPath: "\(partialDirectory)/\($0)")[.size] as? Int
                }.max() ?? 0
            }
            let started = await poll(timeout: .seconds(60), every: .milliseconds(20)) {
                partialSize() >= sealedSize / 4
            }
            #expect(started, "the relayed delivery got under way")
            let killedAt = partialSize()
            // The machine goes away: its link first (what its kernel still buffered never leaves),
            // then the process.
            let victim = try #require(world.nodes.first { $0.id == holder })
            try world.network.cut(victim.host)
            victim.kill9()
            let finished = await poll(timeout: .seconds(120), every: .milliseconds(100)) { !sending.isRunning }
            #expect(finished, "the send finished")
            let resumed = Self.object(
                String(decoding: sendOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
            #expect(
                resumed["status"] as? String == "delivered" && resumed["path"] as? String == "relayed", "\(resumed)")
            let survivors = world.stats()
            let carriedByNode = survivors.compactMapValues { ($0["relay"] as? [String: Any])?["relayedBytes"] as? Int }
            let carried = carriedByNode.values.reduce(0, +)
            #expect(
                carried > 0 && carried <= sealedSize - killedAt + (1 << 22),
                "the survivors carried the rest, not the whole: \(carried) of \(sealedSize), \(killedAt) held at the kill"
            )
            try world.network.setRate(world.gateways["bob"]!, mbit: 0)
            #expect(try view("bob", "big") == Data(noise), "the resumed image is byte-exact")
            print(
                "NAT relay: killed \(holder) with \(killedAt) of \(sealedSize) bytes held; the survivors carried \(carried) bytes (\(carriedByNode))"
            )

            // Bob goes offline; alice sends, then leaves; bob comes back and collects it from the mailbox.
            func attached() -> Int {
                world.stats().values.compactMap { ($0["relay"] as? [String: Any])?["attachedPeers"] as? Int }.reduce(
                    0, +)
            }
            #expect(await poll(timeout: .seconds(30), every: .milliseconds(200)) { attached() == 3 })
            stopProcess(daemons.removeValue(forKey: "bob")!)
            #expect(
                await poll(timeout: .seconds(30), every: .milliseconds(200)) { attached() == 2 }, "bob's link ended")
            let second = try world.peer("alice", ["encrypt", Self.sampleImage, "--as", "second", "--json"])
            #expect(second.status == 0, "encrypt second: \(second.errors)")
            let toMailbox = Self.object(
                try world.peer("alice", ["send", "second", "--to", "bob", "--views", "1", "--json"]).output)
            #expect(toMailbox["status"] as? String == "mailbox", "\(toMailbox)")
            stopProcess(daemons.removeValue(forKey: "alice")!)
            daemons["bob"] = try world.serve("bob")
            let collected = await poll(timeout: .seconds(60), every: .milliseconds(200)) {
                FileManager.default.fileExists(atPath: "\(world.home("bob"))/received/alice/second.png")
            }
            #expect(collected, "bob's daemon collected the mailbox")
            #expect(try view("bob", "second") == original, "the mailbox delivery is byte-exact")

            // Bob offline again: carol leaves 8 MB for him; alice, a second sender, would take his
            // mailbox past its 12 MiB and is refused, clearly.
            stopProcess(daemons.removeValue(forKey: "bob")!)
            #expect(await poll(timeout: .seconds(30), every: .milliseconds(200)) { attached() == 1 })
            let carolBig = try world.peer("carol", ["encrypt", big.path, "--as", "big", "--json"])
            #expect(carolBig.status == 0, "carol encrypts: \(carolBig.errors)")
            let fromCarol = Self.object(
                try world.peer("carol", ["send", "big", "--to", "bob", "--views", "1", "--json"]).output)
            #expect(fromCarol["status"] as? String == "mailbox", "\(fromCarol)")
            let overQuota = try world.peer("alice", ["send", "big", "--to", "bob", "--views", "1"])
            #expect(
                overQuota.output.contains("mailbox is full") && overQuota.output.contains("not delivered"),
                "alice is refused: \(overQuota.output) \(overQuota.errors)")
            print("NAT mailbox quota refusal, as alice sees it:\n\(overQuota.output)")
        }
    }

    @Test(
        "figures: bytes/s of a 30 MB delivery direct and relayed against a plain TCP copy of the same bytes over the same links, alternated in pairs",
        .enabled(
            if: ProcessInfo.processInfo.environment["DISTRI_NAT_FIGURES"] != nil,
            "set DISTRI_NAT_FIGURES=1 to measure (scripts/nat-figures.sh)")
    )
    func deliveryFigures() async throws {
        let environment = ProcessInfo.processInfo.environment
        let mbit = Int(environment["DISTRI_NAT_MBIT"] ?? "") ?? 100
        let bytes = (Int(environment["DISTRI_NAT_MB"] ?? "") ?? 30) * 1_000_000
        let rounds = Int(environment["DISTRI_NAT_ROUNDS"] ?? "") ?? 2
        try await Self.withWorld { world in
            if mbit > 0 {
                for host in world.nodes.map(\.host) + [world.hosts["carol"]!] + world.gateways.values {
                    try world.network.setRate(host, mbit: mbit)
                }
            }
            var daemons: [Process] = []
            defer { for daemon in daemons { stopProcess(daemon) } }
            // Bob's daemon first, alone, so the node holding his relay link is the one with a link.
            daemons.append(try world.serve("bob"))
            func linked() -> [String: Int] {
                world.stats().compactMapValues { ($0["relay"] as? [String: Any])?["attachedPeers"] as? Int }
            }
            #expect(await poll(timeout: .seconds(30), every: .milliseconds(200)) { linked().values.reduce(0, +) == 1 })
            let holder = try #require(linked().first { $0.value == 1 }?.key, "a node holds bob's relay link")
            for name in ["alice", "carol"] { daemons.append(try world.serve(name)) }
            #expect(
                await poll(timeout: .seconds(30), every: .milliseconds(500)) {
                    let listed = world.peers()
                    return listed.count == 3 && listed.values.allSatisfy { $0.reachable != nil }
                })
            // A stand-in for a sealed image of `bytes` bytes (the transfer checks only its digest).
            let images = "\(world.home("alice"))/images"
            let keys = "\(world.home("alice"))/keys"
            for directory in [images, keys] {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            var generator = SplitMix64(seed: 30)
            let payload = (0..<bytes).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            try Data(payload).write(to: URL(fileURLWithPath: "\(images)/fig.png"))
            try Data((try ImageKey.generate().text + "\n").utf8).write(to: URL(fileURLWithPath: "\(keys)/fig.key"))
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(keys)/fig.key")

            let relayHost = try #require(world.nodes.first { $0.id == holder }).host
            var servers: [Process] = []
            defer { for server in servers { stopProcess(server) } }
            for (host, mode, port) in [(world.hosts["carol"]!, "sink", 7200), (relayHost, "pipe", 7300)] {
                let server = world.network.process(
                    on: host, executable: "/usr/bin/env",
                    arguments: ["python3", TestNetwork.probe, mode, "--listen", "0.0.0.0:\(port)"])
                let output = Pipe()
                server.standardOutput = output
                try server.run()
                servers.append(server)
                _ = try listeningAddress(of: server, output: output, name: "netprobe \(mode)")
            }
            func copy(to target: String, viaPipe: Bool) throws -> Double {
                var puller: Process?
                if viaPipe {
                    let pull = world.network.process(
                        on: world.hosts["bob"]!, executable: "/usr/bin/env",
                        arguments: ["python3", TestNetwork.probe, "pull", "--from", target])
                    pull.standardOutput = Pipe()
                    try pull.run()
                    puller = pull
                }
                defer { puller.map { stopProcess($0) } }
                let pushed = try world.network.run(
                    on: world.hosts["alice"]!, executable: "/usr/bin/env",
                    arguments: ["python3", TestNetwork.probe, "push", "--to", target, "--bytes", "\(bytes)"]
                        + (viaPipe ? ["--via-pipe"] : []), timeout: 300)
                let result = Self.object(pushed.output)
                #expect(result["ok"] as? Bool == true, "copy to \(target): \(pushed.output) \(pushed.errors)")
                return (result["bytes_per_s"] as? NSNumber)?.doubleValue ?? 0
            }
            func deliver(to name: String, path: String) throws -> Double {
                let received = "\(world.home(name))/received/alice"
                for file in (try? FileManager.default.contentsOfDirectory(atPath: received)) ?? []
                where file.hasPrefix("fig.png") {
                    try FileManager.default.removeItem(atPath: "\(received)/\(file)")
                }
                let sent = try world.peer(
                    "alice", ["send", "fig", "--to", name, "--views", "1", "--json"], timeout: 300)
                let result = Self.object(sent.output)
                #expect(result["path"] as? String == path, "send to \(name): \(sent.output) \(sent.errors)")
                return ((result["transfer"] as? [String: Any])?["bytesPerSecond"] as? NSNumber)?.doubleValue ?? 0
            }
            var figures: [String: [Double]] = [:]
            for _ in 0..<rounds {
                figures["copy direct", default: []].append(
                    try copy(to: "\(world.hosts["carol"]!.address):7200", viaPipe: false))
                figures["deliver direct", default: []].append(try deliver(to: "carol", path: "direct"))
                figures["copy relayed", default: []].append(try copy(to: "\(relayHost.address):7300", viaPipe: true))
                figures["deliver relayed", default: []].append(try deliver(to: "bob", path: "relayed"))
            }
            func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            var lines = [
                "NAT delivery figures: \(bytes / 1_000_000) MB, links \(mbit == 0 ? "unlimited" : "\(mbit) Mbit/s") each way, 40 ms RTT, jitter 3 ms, 1% loss; \(rounds) alternated rounds (MB/s)"
            ]
            for name in ["copy direct", "deliver direct", "copy relayed", "deliver relayed"] {
                let values = figures[name] ?? []
                lines.append("  \(name): " + values.map { String(format: "%.2f", $0 / 1e6) }.joined(separator: " "))
            }
            let direct = median(figures["deliver direct"]!) / median(figures["copy direct"]!)
            let relayedToRelayedCopy = median(figures["deliver relayed"]!) / median(figures["copy relayed"]!)
            let relayedToDirectCopy = median(figures["deliver relayed"]!) / median(figures["copy direct"]!)
            lines.append(String(format: "  direct / copy: %.2fx", direct))
            lines.append(
                String(
                    format: "  relayed / copy through a plain TCP pipe on the relay host: %.2fx", relayedToRelayedCopy))
            lines.append(String(format: "  relayed / direct copy: %.2fx", relayedToDirectCopy))
            print(lines.joined(separator: "\n"))
        }
    }
}
