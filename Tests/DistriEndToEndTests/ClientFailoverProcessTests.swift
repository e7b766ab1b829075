import Distri
import DistriTestSupport
import Foundation
import NIOCore
import Testing

/// A call whose node is paused (SIGSTOP: its connections stay open, nothing answers) completes on
/// another node after the attempt timeout, instead of waiting out the pause or its deadline.
@Suite(.serialized) struct ClientFailoverProcessTests {
    @Test("a call to a paused node completes on another within the attempt timeout; slow calls stay")
    func pausedNode() async throws {
        try await withNodeProcesses(3) { nodes in
            let addresses = nodes.map(\.address)
            let converged = await poll(timeout: .seconds(30)) {
                await membershipAgrees(observers: addresses, alive: Set(nodes.map(\.id)))
            }
            try #require(converged, "the cluster did not converge")
            let client = Client(nodes: [addresses[0]], configuration: .discovering(refreshMillis: 1000))
            await client.refreshMembership()
            #expect(Set(await client.knownNodes()) == Set(addresses))
            // Warm up: every node's connection open, and the estimator of `Spin` fed with quick calls.
            for _ in 0..<60 {
                _ = try await client.call(ByteBuffer(), service: "Spin", params: ["1"], routing: .local).get()
            }

            // A slow service on live nodes is not moved: three 1.5 s calls at once, one starting on
            // each node (calls rotate), each answered by the node it started on.
            let clock = ContinuousClock()
            let slowStart = clock.now
            let slow = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        String(
                            buffer: try await client.call(
                                ByteBuffer(), service: "Sleep", params: ["1500"], routing: .local
                            ).get())
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let slowTook = clock.now - slowStart
            print("three 1.5 s Sleep calls at once: answered by \(slow.sorted()) in \(slowTook)")
            #expect(Set(slow) == Set(nodes.map(\.id)), "a slow call was moved off a live node")

            // Pause one node; three calls at once, one of which starts on the paused node.
            let paused = nodes[2]
            kill(paused.pid, SIGSTOP)
            defer { kill(paused.pid, SIGCONT) }
            let start = clock.now
            let answers = try await withThrowingTaskGroup(of: (String, Duration).self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        let reply = try await client.call(
                            ByteBuffer(), service: "Spin", params: ["1"], routing: .local
                        ).get()
                        // Spin answers "<node id> <digit>".
                        return (String(String(buffer: reply).split(separator: " ")[0]), clock.now - start)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let slowest = answers.map(\.1).max()!
            print(
                "calls with one node paused: \(answers.map { "\($0.0) after \($0.1.formatted(.units(allowed: [.milliseconds])))" }); "
                    + "the one that met the paused node completed elsewhere after \(slowest)")
            #expect(!answers.contains { $0.0 == paused.id })
            // It met the paused node (else the figure means nothing) and left it within the attempt
            // timeout plus the probe's (250 ms + 250 ms at the floor), with slack for a busy machine.
            #expect(slowest > .milliseconds(400), "no call met the paused node")
            #expect(slowest < .milliseconds(1500), "moving off the paused node took \(slowest)")

            // An elected call keeps working too, with the paused node still in the view.
            let elected = clock.now
            for _ in 0..<6 { _ = try await client.send([1], service: BuiltinServices.echo) }
            print("six elected Echo calls with a node paused: \(clock.now - elected)")
            kill(paused.pid, SIGCONT)
            await client.shutdown()
        }
    }
}

/// `distri-node stats` finds the cloud as `distri-peer` does, and says where it looked when it fails.
@Suite(.serialized) struct CloudLocatorProcessTests {
    /// Runs `distri-node` with `environment` in place of this process's (HOME a fresh directory, so no
    /// cloud file or CA of this machine's user is found).
    private func node(_ arguments: [String], environment: [String: String]) throws -> (
        status: Int32, output: String, errors: String
    ) {
        let home = TemporaryDirectory("distri-cli")
        defer { home.remove() }
        var env = ["HOME": home.path, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        env.merge(environment) { $1 }
        return try runBuilt("distri-node", arguments, environment: env)
    }

    @Test("stats without --cloud: $DISTRI_CLOUD with one address lists every node; a dead one is named with its source")
    func statsFromEnvironment() async throws {
        try await withNodeProcesses(3) { nodes in
            let converged = await poll(timeout: .seconds(30)) {
                await membershipAgrees(observers: nodes.map(\.address), alive: Set(nodes.map(\.id)))
            }
            try #require(converged)
            let found = try node(
                ["stats", "--json", "--ca", E2ETLS.caFile], environment: ["DISTRI_CLOUD": nodes[0].address.description])
            #expect(found.status == 0, "\(found.errors)")
            for node in nodes { #expect(found.output.contains("\"\(node.id)\""), "\(node.id) missing") }
        }
        let dead = "127.0.0.1:1"
        let failed = try node(["stats", "--insecure"], environment: ["DISTRI_CLOUD": dead])
        print("distri-node stats with a dead $DISTRI_CLOUD: status \(failed.status): \(failed.errors)")
        #expect(failed.status != 0)
        #expect(failed.errors.contains("cannot reach \(dead) (from $DISTRI_CLOUD): nothing listens there"))
        #expect(failed.status == 69, "unreachable has its exit code")
        let none = try node(["stats", "--insecure"], environment: [:])
        #expect(none.status != 0)
        #expect(none.errors.contains("no cloud given"))
    }
}
