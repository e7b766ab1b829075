import Foundation
import Testing

@testable import DistriCore

/// Seeded simulations of replicated document DB nodes (see ``runReplicationSchedule(seed:trace:)``).
/// A failing seed is reported with the command that replays it alone with a trace; runs are exactly
/// repeatable only with `SWIFT_DETERMINISTIC_HASHING=1`, because the engine's output order follows
/// dictionary iteration order.
@Suite struct ReplicationSimulationTests {
    /// Scaled by `DISTRI_REPL_SIM_SEEDS` for soak runs.
    static let seedCount: UInt64 =
        ProcessInfo.processInfo.environment["DISTRI_REPL_SIM_SEEDS"].flatMap { UInt64($0) } ?? 500
    static let chunks: [UInt64] = Array(0..<4)

    /// Replicas under loss, reordering, duplicates, partitions, crashes and wipes converge and keep every
    /// acknowledged write; a counter with a limit never exceeds it.
    @Test("seeded schedules converge and lose no acknowledged write", arguments: chunks)
    func schedules(chunk: UInt64) {
        guard ProcessInfo.processInfo.environment["DISTRI_REPL_SIM_SEED"] == nil else { return }
        let size = (Self.seedCount + UInt64(Self.chunks.count) - 1) / UInt64(Self.chunks.count)
        let seeds = min(chunk * size, Self.seedCount)..<min((chunk + 1) * size, Self.seedCount)
        var failed: [UInt64] = []
        var totals = (operations: 0, acknowledged: 0, increments: 0, reads: 0, restarts: 0, wipes: 0)
        var slowest: UInt64 = 0
        for seed in seeds {
            let outcome = runReplicationSchedule(seed: seed)
            totals.operations += outcome.operations
            totals.acknowledged += outcome.acknowledged
            totals.increments += outcome.increments
            totals.reads += outcome.reads
            totals.restarts += outcome.restarts
            totals.wipes += outcome.wipes
            slowest = max(slowest, outcome.convergedAfter ?? 0)
            if outcome.failure != nil {
                failed.append(seed)
                Issue.record("\(outcome)\n\(outcome.replayHint)")
            }
        }
        print(
            "replication seeds \(seeds): \(failed.count) failed \(failed), \(totals.operations) ops, "
                + "\(totals.acknowledged) acknowledged, \(totals.increments) increments, "
                + "\(totals.reads) reads checked, "
                + "\(totals.restarts) restarts, \(totals.wipes) wiped; converged within \(slowest) ms of the heal")
    }

    @Test("replays DISTRI_REPL_SIM_SEED with a trace")
    func replay() {
        guard let text = ProcessInfo.processInfo.environment["DISTRI_REPL_SIM_SEED"], let seed = UInt64(text) else {
            return
        }
        let outcome = runReplicationSchedule(seed: seed, trace: true)
        if outcome.failure != nil {
            for line in outcome.trace ?? [] { print(line) }
        }
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
    }
}
