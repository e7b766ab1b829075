import DistriCore
import DistriTestSupport
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Distri

/// Group commit of the replica's write-ahead log (`DurableLog`): appends from several event loops share
/// one write and one fdatasync, an acknowledged append survives a restart (compactions included), and a
/// failed write fails every append of its group. A compaction's reservation holds the log's thread at a
/// known place, so the groups these tests form do not depend on timing.
@Suite struct GroupCommitTests {
    private static func entry(_ number: Int) -> PersistedEntry {
        .change(
            sequence: UInt64(number),
            .collection(
                name: "c\(number)", created: HLCTimestamp(millis: UInt64(number), counter: 0, node: "n1"), dropped: nil)
        )
    }

    /// Appends `entries` from `loop` and returns the log's answer once they are durable (nil) or failed.
    private static func append(_ log: DurableLog, _ entries: [PersistedEntry], on loop: any EventLoop) async -> String?
    {
        await withCheckedContinuation { continuation in
            loop.execute { log.append(entries, on: loop) { continuation.resume(returning: $0) } }
        }
    }

    /// Appends entry `numbers` (one append each) from the group's loops in turn, all at once.
    private static func appendConcurrently(
        _ log: DurableLog, _ numbers: Range<Int>, group: MultiThreadedEventLoopGroup
    ) async -> [String?] {
        await withTaskGroup(of: String?.self) { tasks in
            for number in numbers {
                let loop = group.next()
                tasks.addTask { await append(log, [entry(number)], on: loop) }
            }
            var outcomes: [String?] = []
            for await outcome in tasks { outcomes.append(outcome) }
            return outcomes
        }
    }

    @Test("appends from several event loops share syncs, and every one is recovered after a reopen")
    func appendsShareSyncs() async throws {
        let directory = TemporaryDirectory("group-commit")
        defer { directory.remove() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let writes = 200
        do {
            let (log, recovered, _) = try DurableLog.open(directory: directory.path)
            #expect(recovered.isEmpty)
            let before = log.counters.syncs
            let outcomes = await Self.appendConcurrently(log, 0..<writes, group: group)
            #expect(outcomes.count == writes && outcomes.allSatisfy { $0 == nil })
            let syncs = log.counters.syncs - before
            #expect(syncs >= 1 && syncs < UInt64(writes), "\(syncs) syncs for \(writes) appends")
            log.close()
        }
        let (log, recovered, truncated) = try DurableLog.open(directory: directory.path)
        defer { log.close() }
        #expect(truncated == 0)
        #expect(Set(recovered) == Set((0..<writes).map(Self.entry)))
        try await group.shutdownGracefully()
    }

    @Test("appends queued while the log's thread is busy go to disk as one group, with one sync")
    func oneGroupOneSync() async throws {
        let directory = TemporaryDirectory("group-commit")
        defer { directory.remove() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let (log, _, _) = try DurableLog.open(directory: directory.path)
        defer { log.close() }
        _ = await Self.append(log, [Self.entry(0)], on: group.next())
        // The reservation holds the log's thread until the snapshot comes: every append made
        // meanwhile waits in the group forming behind it.
        let reservation = log.reserveCompaction()
        let appends = Task { await Self.appendConcurrently(log, 1..<65, group: group) }
        while log.lastQueued < 65 { await Task.yield() }
        let before = log.counters
        log.compact(reservation, snapshot: [Self.entry(0)])
        let outcomes = await appends.value
        #expect(outcomes.count == 64 && outcomes.allSatisfy { $0 == nil })
        // The compaction's syncs (the new file, its directory) and one for the whole group.
        #expect(log.counters.syncs - before.syncs == 3)
        #expect(log.isDurable(65))
        try await group.shutdownGracefully()
    }

    @Test("a compaction keeps the appends queued after its snapshot was taken")
    func compactionKeepsLaterAppends() async throws {
        let directory = TemporaryDirectory("group-commit")
        defer { directory.remove() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        do {
            let (log, _, _) = try DurableLog.open(directory: directory.path)
            #expect(await Self.append(log, [Self.entry(1)], on: loop) == nil)
            // The snapshot holds entry 1; entry 2 is queued after the reservation, before the
            // snapshot is encoded: it must land after the snapshot, not under it.
            let reservation = log.reserveCompaction()
            let later = Task { await Self.append(log, [Self.entry(2)], on: loop) }
            while log.lastQueued < 2 { await Task.yield() }
            log.compact(reservation, snapshot: [Self.entry(1)])
            #expect(await later.value == nil)
            log.close()
        }
        let (log, recovered, _) = try DurableLog.open(directory: directory.path)
        defer { log.close() }
        #expect(recovered == [Self.entry(1), Self.entry(2)])
    }

    @Test("a failed write fails every append of its group, calls the failure handler once, and is final")
    func failedGroupFailsAll() async throws {
        let directory = TemporaryDirectory("group-commit")
        defer { directory.remove() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let (log, _, _) = try DurableLog.open(directory: directory.path)
        defer { log.close() }
        let failures = NodeLock<[String]>([])
        log.onFailure { failure in failures.withLockedValue { $0.append(failure) } }
        let reservation = log.reserveCompaction()
        let appends = Task { await Self.appendConcurrently(log, 1..<33, group: group) }
        while log.lastQueued < 32 { await Task.yield() }
        log.closeFileForTesting()
        log.compact(reservation, snapshot: [])
        let outcomes = await appends.value
        #expect(outcomes.count == 32)
        #expect(outcomes.allSatisfy { $0 != nil }, "an append of the failed group was acknowledged")
        #expect(Set(outcomes).count == 1, "every append is told the same, first error")
        #expect(failures.withLockedValue { $0 } == [log.failure].compactMap { $0 })
        #expect(!log.isDurable(32))
        #expect(await Self.append(log, [Self.entry(99)], on: group.next()) == log.failure)
        try await group.shutdownGracefully()
    }

    @Test("a replica's writes from several event loops are all recovered after a restart")
    func replicaWritesSurviveRestart() async throws {
        let directory = TemporaryDirectory("group-commit")
        defer { directory.remove() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let ids = (0..<100).map { "d\($0)" }
        do {
            let replica = try DatabaseReplica(
                nodeID: "n1", limits: DatabaseLimits(), dataDirectory: directory.path, logger: Logger(label: "test"))
            _ = try await replica.write(.createCollection("c"), consistency: .majority, deadline: nil, on: group.next())
                .get()
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for id in ids {
                    let loop = group.next()
                    tasks.addTask {
                        let receipt = try await replica.write(
                            .add(collection: "c", id: id, body: ["x": .number(1)]), consistency: .majority,
                            deadline: nil, on: loop
                        ).get()
                        #expect(receipt.id == id)
                    }
                }
                try await tasks.waitForAll()
            }
            await replica.stop()
        }
        let replica = try DatabaseReplica(
            nodeID: "n1", limits: DatabaseLimits(), dataDirectory: directory.path, logger: Logger(label: "test"))
        let held = replica.withStore { store in ids.filter { store.document($0, in: "c") != nil } }
        #expect(held == ids)
        await replica.stop()
        try await group.shutdownGracefully()
    }
}
