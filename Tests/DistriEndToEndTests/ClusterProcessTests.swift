import Distri
import DistriTestSupport
import Foundation
import NIOCore
import Testing

/// Runs `total` calls of `service`, `concurrency` at a time; returns the failures.
private func runTasks(
    _ client: Client, total: Int, concurrency: Int, service: String, params: [String],
    onProgress: (Int) async -> Void = { _ in }
) async -> [Error] {
    await withTaskGroup(of: Error?.self) { group in
        var failures: [Error] = []
        var started = 0
        var finished = 0
        func startOne() {
            started += 1
            group.addTask {
                do {
                    _ = try await client.send([1], service: service, params: params)
                    return nil
                } catch { return error }
            }
        }
        while started < min(concurrency, total) { startOne() }
        while let outcome = await group.next() {
            finished += 1
            if let outcome { failures.append(outcome) }
            await onProgress(finished)
            if started < total { startOne() }
        }
        return failures
    }
}

@Suite(.serialized) struct ClusterProcessTests {
    @Test("kill -9 one of 3 nodes under load: no task fails, the others mark it dead, it rejoins and gets work")
    func killNineUnderLoad() async throws {
        try await withNodeProcesses(3) { nodes in
            let addresses = nodes.map(\.address)
            let ids = Set(nodes.map(\.id))
            #expect(await poll(timeout: .seconds(10)) { await membershipAgrees(observers: addresses, alive: ids) })

            let client = Client(nodes: addresses, configuration: .tls)
            let victim = nodes[2]
            var killedAt: ContinuousClock.Instant?
            let failures = await runTasks(client, total: 1000, concurrency: 16, service: "Sleep", params: ["10"]) {
                done in
                if done == 250, killedAt == nil {
                    victim.kill9()
                    killedAt = .now
                }
            }
            #expect(failures.isEmpty, "failed tasks: \(failures.prefix(3))")
            let survivors = [addresses[0], addresses[1]]
            #expect(
                await poll(timeout: .seconds(10), every: .milliseconds(20)) {
                    let views = await stats(of: survivors)
                    return views.count == 2
                        && views.values.allSatisfy { view in
                            view.members.contains { $0.id == victim.id && $0.status == "dead" }
                        }
                })
            let detected = ContinuousClock.now - (killedAt ?? .now)
            let views = await stats(of: survivors)
            let detections = views.values.compactMap { $0.cluster.detectionMillis[victim.id] }
            print("kill -9 detection: dead everywhere after at most \(detected); per-node detection ms: \(detections)")
            #expect(detections.count == 2)
            #expect(detections.allSatisfy { $0 <= 3000 }, "detection should take about 2 s, took \(detections) ms")

            try victim.restart()
            #expect(await poll(timeout: .seconds(10)) { await membershipAgrees(observers: addresses, alive: ids) })
            let after = await runTasks(client, total: 300, concurrency: 16, service: "Sleep", params: ["10"])
            #expect(after.isEmpty)
            let restarted = await stats(of: [victim.address])[victim.address]
            #expect((restarted?.completed ?? 0) > 0, "the restarted node receives work again")
            await client.shutdown()
        }
    }

    @Test("one node cut off: the majority keeps serving every task, and the node rejoins after")
    func cutOffNode() async throws {
        try await withNodeProcesses(3) { nodes in
            let addresses = nodes.map(\.address)
            let ids = Set(nodes.map(\.id))
            #expect(await poll(timeout: .seconds(10)) { await membershipAgrees(observers: addresses, alive: ids) })
            let control = Client(nodes: [nodes[2].address], configuration: .tls)
            _ = try await control.call(
                ByteBuffer(), service: "GoDark", params: ["4000"], node: nodes[2].address, routing: .local
            ).get()
            await control.shutdown()
            // Clients of the majority: tasks the majority first elects the cut-off node for fail over.
            let majority = Client(nodes: [addresses[0], addresses[1]], configuration: .tls)
            let failures = await runTasks(majority, total: 400, concurrency: 16, service: "Sleep", params: ["10"])
            #expect(failures.isEmpty, "failed tasks: \(failures.prefix(3))")
            #expect(
                await poll(timeout: .seconds(10)) {
                    let views = await stats(of: [addresses[0], addresses[1]])
                    return views.values.allSatisfy { view in
                        view.members.contains { $0.id == nodes[2].id && $0.status != "alive" }
                    } && views.count == 2
                })
            #expect(await poll(timeout: .seconds(15)) { await membershipAgrees(observers: addresses, alive: ids) })
            await majority.shutdown()
        }
    }

    @Test("load spread: 4 nodes, 64 concurrent clients of a CPU-bound service")
    func loadSpread() async throws {
        try await withNodeProcesses(4) { nodes in
            let addresses = nodes.map(\.address)
            let ids = Set(nodes.map(\.id))
            #expect(await poll(timeout: .seconds(10)) { await membershipAgrees(observers: addresses, alive: ids) })
            let clients = (0..<64).map { _ in Client(nodes: addresses, configuration: .tls) }
            let before = await stats(of: addresses)
            let failures = await withTaskGroup(of: [Error].self) { group in
                for client in clients {
                    group.addTask {
                        await runTasks(client, total: 20, concurrency: 1, service: "Spin", params: ["2000"])
                    }
                }
                return await group.reduce(into: [Error]()) { $0 += $1 }
            }
            #expect(failures.isEmpty)
            let after = await stats(of: addresses)
            let counts = addresses.map { (after[$0]?.completed ?? 0) - (before[$0]?.completed ?? 0) }
            let ratio = Double(counts.max() ?? 0) / Double(max(1, counts.min() ?? 0))
            print("load spread over 4 nodes: tasks completed \(counts), busiest/least busy = \(ratio)")
            #expect(counts.reduce(0, +) >= 64 * 20)
            #expect(ratio <= 1.25)
            for client in clients { await client.shutdown() }
        }
    }
}
