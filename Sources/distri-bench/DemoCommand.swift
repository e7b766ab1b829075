import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import DistriImaging
import Foundation
import Logging
import NIOCore

/// `distri-bench demo`: the main job of the README, step by step.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Start a local cloud, call its services, print its stats, and stop it.")

    @Option(name: .long, help: "Number of nodes.")
    var nodes = 3

    @OptionGroup var log: LogOptions

    func run() async throws {
        var log = self.log
        // The tour prints its own story: warnings only, unless asked otherwise.
        if log.logLevel == nil, ProcessInfo.processInfo.environment["DISTRI_LOG_LEVEL"] == nil {
            log.logLevel = .warning
        }
        log.bootstrap()
        let logger = Logger(label: "distri.demo")

        step(1, "Start a local cloud of \(nodes) nodes on free loopback ports, speaking TLS")
        let authority = try ThrowawayAuthority()
        let cloud = try await LocalCloud.start(nodes: nodes, host: "127.0.0.1", authority: authority, logger: logger)
        for (node, address) in zip(cloud.nodes, cloud.addresses) { say("node \(node.id) at \(address)") }
        say("a throw-away cluster CA issued each node's certificate; node links are mutual TLS")
        let plain = Client(nodes: [cloud.addresses[0]], configuration: ClientConfiguration(timeout: .seconds(2)))
        do {
            _ = try await plain.send(Array("hello".utf8), service: BuiltinServices.echo)
            say("plain TCP was answered (it should not be)")
        } catch {
            say("a plain TCP client is refused: \((error as? ClientError).map { "\($0.kind)" } ?? "\(error)")")
        }
        await plain.shutdown()
        let secure = ClientConfiguration(tls: authority.clientTLS)
        for node in cloud.nodes {
            node.register("Uppercase") { request in request.bytes.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 } }
        }
        say("every node also serves a user service, Uppercase, registered in one line")

        let client = Client(nodes: cloud.addresses, configuration: secure)
        step(2, "Call services through the Client (bytes in, bytes out)")
        let echoed = try await client.send(Array("hello, cloud".utf8), service: BuiltinServices.echo)
        say("Echo(\"hello, cloud\") -> \"\(String(decoding: echoed, as: UTF8.self))\"")
        let upper = try await client.send(Array("distri".utf8), service: "Uppercase")
        say("Uppercase(\"distri\") -> \"\(String(decoding: upper, as: UTF8.self))\"")
        do {
            _ = try await client.send([], service: "NoSuchService")
        } catch {
            say("NoSuchService -> error: \(error)")
        }

        step(3, "1,000 concurrent calls, spread over the nodes")
        let futures = (0..<1000).map { i in client.call(ByteBuffer(string: "call \(i)"), service: "Uppercase") }
        var correct = 0
        for (i, future) in futures.enumerated() where String(buffer: try await future.get()) == "CALL \(i)" {
            correct += 1
        }
        say("\(correct) of 1000 replies correct and matched to their calls")

        step(4, "The membership as the first node sees it (SWIM gossip)")
        try await waitForMembers(cloud, alive: cloud.nodes.count)
        printMembers(of: cloud.nodes[0])

        step(5, "Every node's stats (collectStats)")
        let stats = await client.collectStats()
        print(stats.table)

        step(6, "The document DB: every node holds a replica")
        try await databaseTour(cloud, stats: client, configuration: secure)

        step(7, "Encrypt an image on an elected node; the front end decodes and verifies it")
        try await encryptionTour(client)

        if cloud.nodes.count > 1, let leaving = cloud.nodes.last {
            step(8, "Node \(leaving.id) leaves; calls go on without it")
            await leaving.shutdown()
            let calls = (0..<200).map { i in client.call(ByteBuffer(string: "after \(i)"), service: "Uppercase") }
            var ok = 0
            for call in calls where (try? await call.get()) != nil { ok += 1 }
            say("\(ok) of 200 calls served by the remaining nodes")
            try await waitForMembers(cloud, alive: cloud.nodes.count - 1)
            printMembers(of: cloud.nodes[0])
        }

        step(9, "Stop the cloud gracefully")
        await client.shutdown()
        await cloud.stop()
        say("done")
        if correct != 1000 { throw ExitCode.failure }
    }

    /// One sample image (or a generated one when sample-images/ is not here) through the Encrypt
    /// service, verified and opened again on this side.
    private func encryptionTour(_ client: Client) async throws {
        let sample = "sample-images/rgba8.png"
        let image =
            try FileManager.default.contents(atPath: sample).map { Array($0) }
            ?? PNGCodec.encode(CoverGenerator.cover(width: 96, height: 64, seed: 1))
        let source = FileManager.default.fileExists(atPath: sample) ? sample : "a generated 96x64 PNG"
        let sealed = try await ImageEncryptionClient(client: client).encrypt(image)
        say(
            "Encrypt(\(source), \(image.count) bytes) -> a \(sealed.width)x\(sealed.height) cover PNG of \(sealed.png.count) bytes"
        )
        say("key (for the owner only): \(sealed.key.text.prefix(32))...")
        let opened = try ImageSealer.decrypt(png: sealed.png, key: sealed.key)
        say("verified and opened on this side: \(opened == image ? "byte-exact" : "DIFFERENT") (\(opened.count) bytes)")
        // One pixel's lowest bit changed, and the PNG written again as a valid file.
        var carrier = try PNGCodec.decode(sealed.png).image
        carrier.pixels[10 * 4] ^= 0x01
        let repainted = try PNGCodec.encode(carrier)
        do {
            _ = try ImageSealer.decrypt(png: repainted, key: sealed.key)
            say("a tampered copy opened?!")
        } catch {
            say("one pixel's lowest bit changed -> \(error)")
        }
        let other = try ImageKey.generate()
        do {
            _ = try ImageSealer.decrypt(png: sealed.png, key: other)
        } catch {
            say("another key -> \(error)")
        }
    }

    /// Writes on different nodes, a filtered and sorted read on another, a conditional update, and
    /// each node's document count.
    private func databaseTour(_ cloud: LocalCloud, stats: Client, configuration: ClientConfiguration) async throws {
        // One client per node, so that each call below goes where it says.
        var pinned = configuration
        pinned.membershipRefresh = nil  // each client calls its own node only
        let clients = cloud.addresses.map { Client(nodes: [$0], configuration: pinned) }
        let databases = clients.map { DocumentDatabase(client: $0) }
        func node(_ index: Int) -> String { cloud.nodes[index % cloud.nodes.count].id }
        func at(_ index: Int) -> DocumentDatabase { databases[index % databases.count] }
        do {
            try await at(0).createCollection("cities")
            say("CreateCollection cities on node \(node(0)) (writes wait for a majority by default)")
            let cities: [(String, String, Double)] = [
                ("Lisbon", "PT", 545_000), ("Oslo", "NO", 709_000), ("Porto", "PT", 232_000),
            ]
            for (index, (name, country, population)) in cities.enumerated() {
                let id = try await at(index).add(
                    ["name": .string(name), "country": .string(country), "population": .number(population)],
                    to: "cities")
                say("AddDocument {\"name\":\"\(name)\",...} on node \(node(index)) -> id \(id)")
            }
            let reader = cloud.nodes.count - 1
            var majority = at(reader)
            majority.readConsistency = .majority
            let page = try await majority.read(
                "cities", filter: .object(["country": .string("PT")]), sort: "population", descending: true)
            say(
                "ReadCollection on node \(node(reader)), filter {\"country\":\"PT\"}, sort population descending, read=majority:"
            )
            for document in page.documents {
                say(
                    "  \(document.id)  \(document.body["name"]?.stringValue ?? "?")  \(document.body["population"]?.jsonText ?? "?")"
                )
            }
            guard let porto = page.documents.last?.id else {
                throw DemoFailure(description: "the read found no documents")
            }
            let condition = JSONValue.object(["population": .number(232_000)])
            let written = try await at(1).update(porto, in: "cities", increment: ["population": 1_000], if: condition)
            say(
                "UpdateDocument \(porto) $inc population 1000, if {\"population\":232000} on node \(node(1)) -> population \(written?["population"]?.jsonText ?? "?")"
            )
            do {
                try await at(2).update(porto, in: "cities", increment: ["population": 1_000], if: condition)
                say("the same conditional update again -> applied (unexpected)")
            } catch let error as ClientError where error.remoteCode == .conflict {
                say("the same conditional update again on node \(node(2)) -> conflict: \(error.message)")
            }
            // Majority writes are acknowledged before the last replica has them: give it a moment.
            var counts: [String] = []
            for _ in 0..<40 {
                let results = await stats.collectStats()
                counts = results.map { item in
                    let documents = (try? item.result.get())?.database?.documents["cities"]
                    return documents.map(String.init) ?? "?"
                }
                if Set(counts) == ["3"] { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            say(
                "documents in cities per node (stats): \(zip(cloud.nodes, counts).map { "\($0.id)=\($1)" }.joined(separator: ", "))"
            )
        } catch {
            for client in clients { await client.shutdown() }
            throw error
        }
        for client in clients { await client.shutdown() }
    }

    struct DemoFailure: Error, CustomStringConvertible {
        var description: String
    }

    private func printMembers(of node: CloudNode) {
        let rows = node.stats().members.map { m in
            [m.id, m.address, m.status, "\(m.incarnation)", m.services.joined(separator: ",")]
        }
        print(TextTable.render(headers: ["id", "address", "status", "incarnation", "services"], rows: rows))
    }

    private func waitForMembers(_ cloud: LocalCloud, alive: Int) async throws {
        for _ in 0..<200 {
            if cloud.nodes[0].stats().members.filter({ $0.status == "alive" }).count == alive { return }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    private func step(_ number: Int, _ title: String) {
        print("\n== \(number). \(title)")
    }

    private func say(_ text: String) {
        print("   \(text)")
    }
}
