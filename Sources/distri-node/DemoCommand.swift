import ArgumentParser
import Distri
import DistriCore
import Logging
import NIOCore

/// `distri-node demo`: the main job of the README, step by step.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Start a local cloud, call its services, print its stats, and stop it.")

    @Option(name: .long, help: "Number of nodes.")
    var nodes = 3

    @OptionGroup var log: LogOptions

    func run() async throws {
        var log = self.log
        if log.logLevel == .info { log.logLevel = .warning }
        log.bootstrap()
        let logger = Logger(label: "distri.demo")

        step(1, "Start a local cloud of \(nodes) nodes on free loopback ports")
        let cloud = try await LocalCloud.start(nodes: nodes, host: "127.0.0.1", logger: logger)
        for (node, address) in zip(cloud.nodes, cloud.addresses) { say("node \(node.id) at \(address)") }
        for node in cloud.nodes {
            node.register("Uppercase") { request in request.bytes.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 } }
        }
        say("every node also serves a user service, Uppercase, registered in one line")

        let client = Client(nodes: cloud.addresses)
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

        if cloud.nodes.count > 1, let leaving = cloud.nodes.last {
            step(6, "Node \(leaving.id) leaves; calls go on without it")
            await leaving.shutdown()
            let calls = (0..<200).map { i in client.call(ByteBuffer(string: "after \(i)"), service: "Uppercase") }
            var ok = 0
            for call in calls where (try? await call.get()) != nil { ok += 1 }
            say("\(ok) of 200 calls served by the remaining nodes")
            try await waitForMembers(cloud, alive: cloud.nodes.count - 1)
            printMembers(of: cloud.nodes[0])
        }

        step(7, "Stop the cloud gracefully")
        await client.shutdown()
        await cloud.stop()
        say("done")
        if correct != 1000 { throw ExitCode.failure }
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
