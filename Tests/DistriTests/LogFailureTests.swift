import DistriCore
import DistriTestSupport
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Distri

/// After a write-ahead log error (a full or broken disk) a replica must not acknowledge what it cannot
/// keep: it refuses writes and replication pushes, still answers pulls, and writes nothing after the
/// error (the log would have a hole).
@Suite struct LogFailureTests {
    @Test("after a log write fails, every later append is told so and nothing more is written")
    func failureIsFinal() async throws {
        let directory = TemporaryDirectory("log-failure")
        defer { directory.remove() }
        do {
            let (log, _, _) = try DurableLog.open(directory: directory.path)
            defer { log.close() }
            let entry = PersistedEntry.change(
                sequence: 1,
                .collection(name: "c", created: HLCTimestamp(millis: 1, counter: 0, node: "n1"), dropped: nil))
            let append = { @Sendable () async -> String? in
                await withCheckedContinuation { continuation in
                    log.append([entry]) { continuation.resume(returning: $0) }
                }
            }
            #expect(await append() == nil)
            log.closeFileForTesting()
            let first = await append()
            #expect(first != nil, "an append to a broken log succeeded")
            #expect(await append() == first, "the first error is final")
            #expect(log.failure == first)
        }
    }

    @Test("a replica whose log failed fails the write in progress and refuses writes and pushes, not pulls")
    func replicaRefusesAfterLogFailure() async throws {
        let directory = TemporaryDirectory("log-failure")
        defer { directory.remove() }
        do {
            let replica = try DatabaseReplica(
                nodeID: "n1", limits: DatabaseLimits(), dataDirectory: directory.path, logger: Logger(label: "test"))
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let created = try await replica.write(.createCollection("c"), consistency: .one, deadline: nil, on: loop)
                .get()
            #expect(created.replicas == 1)
            replica.breakLogForTesting()
            for attempt in ["in progress when the log fails", "after it failed"] {
                let write = replica.write(
                    .add(collection: "c", id: "d", body: ["x": .number(1)]), consistency: .one, deadline: nil, on: loop)
                do {
                    _ = try await write.get()
                    Issue.record("the write \(attempt) was acknowledged")
                } catch let error as ServiceError {
                    #expect(error.code == .unavailable, "\(attempt): \(error)")
                }
            }
            let push = ReplicaRequest.push([], chain: nil)
            await #expect(throws: ServiceError.self, "a push was accepted") {
                try await replica.handle(ByteBuffer(bytes: ReplicaCodec.encode(push)), from: "n2", on: loop).get()
            }
            let pull = ReplicaRequest.pull(PullRequest(since: nil, digests: [:], coverage: [:]))
            let answer = try await replica.handle(ByteBuffer(bytes: ReplicaCodec.encode(pull)), from: "n2", on: loop)
                .get()
            #expect(answer.readableBytes > 0)
            await replica.stop()
        }
    }
}
