import ArgumentParser
import Distri
import DistriCommandLine
import Foundation
import Logging

/// `distri-bench gossip-rate`: membership traffic of an idle local cloud.
struct GossipRateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gossip-rate",
        abstract: "Start an idle local cloud and print each node's membership traffic per second.")

    @Option(name: .long, help: "Number of nodes.")
    var nodes = 9

    @Option(name: .long, help: "Seconds to measure, after the cloud has converged.")
    var seconds = 10

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    func validate() throws {
        if !(2...64).contains(nodes) { throw ValidationError("--nodes must be between 2 and 64") }
        if !(1...600).contains(seconds) { throw ValidationError("--seconds must be between 1 and 600") }
    }

    struct Rate: Codable {
        var node: String
        var sentBytesPerSecond: Double
        var receivedBytesPerSecond: Double
        var messagesPerSecond: Double
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0, metadataProvider: nil) }
        var logger = Logger(label: "distri.gossip-rate")
        logger.logLevel = .warning
        let cloud = try await LocalCloud.start(
            nodes: nodes, host: "127.0.0.1", authority: try ThrowawayAuthority(), logger: logger)
        // Let the cloud converge, then measure the difference over the window.
        try await Task.sleep(for: .seconds(3))
        let before = cloud.nodes.map { $0.stats().cluster }
        try await Task.sleep(for: .seconds(seconds))
        let after = cloud.nodes.map { $0.stats().cluster }
        let alive = cloud.nodes.map { $0.stats().members.filter { $0.status == "alive" }.count }
        await cloud.stop()
        var rates: [Rate] = []
        let window = Double(seconds)
        for index in cloud.nodes.indices {
            let sent = Double(after[index].gossipBytesSent - before[index].gossipBytesSent)
            let received = Double(after[index].gossipBytesReceived - before[index].gossipBytesReceived)
            let messages = Double(after[index].gossipMessagesSent - before[index].gossipMessagesSent)
            rates.append(
                Rate(
                    node: cloud.nodes[index].id, sentBytesPerSecond: sent / window,
                    receivedBytesPerSecond: received / window, messagesPerSecond: messages / window))
        }
        if json {
            print(try JSONStyle.text(rates))
            return
        }
        print(
            TextTable.render(
                headers: ["node", "sent B/s", "received B/s", "messages/s"],
                rows: rates.map {
                    [
                        $0.node, String(Int($0.sentBytesPerSecond)), String(Int($0.receivedBytesPerSecond)),
                        String(format: "%.1f", $0.messagesPerSecond),
                    ]
                }))
        let worst = rates.map { $0.sentBytesPerSecond + $0.receivedBytesPerSecond }.max() ?? 0
        print(
            "busiest node: \(Int(worst)) B/s in and out (payload; add 18 B framing + ~40 B request header per message)")
        print("alive members seen per node: \(alive)")
    }
}
