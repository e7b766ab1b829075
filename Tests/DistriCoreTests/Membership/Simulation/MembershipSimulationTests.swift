import Foundation
import Testing

@testable import DistriCore

/// Seeded simulations of the membership protocol. A failing seed is printed with the command that
/// replays it alone, with a trace: `DISTRI_SIM_SEED=<seed> [DISTRI_SIM_FAULT_FREE=1] DISTRI_SIM_TRACE=1
/// swift test --filter MembershipSimulationTests/replay`.
@Suite struct MembershipSimulationTests {
    /// Scaled by `DISTRI_SIM_SCHEDULES` (fault schedules; a fifth as many fault-free) for soak runs.
    static let faultSchedules: UInt64 =
        ProcessInfo.processInfo.environment["DISTRI_SIM_SCHEDULES"].flatMap { UInt64($0) } ?? 1_000
    static let faultFreeSchedules: UInt64 = max(200, faultSchedules / 5)
    static let chunks: [UInt64] = Array(0..<8)

    private static func check(seeds: Range<UInt64>, faultFree: Bool) {
        var times: [UInt64] = []
        for seed in seeds {
            let outcome = runSchedule(seed: seed, faultFree: faultFree)
            if outcome.failure != nil {
                Issue.record("\(outcome)\n\(outcome.replayHint)")
            }
            times.append(outcome.convergedAfter ?? 0)
        }
        let mean = times.reduce(0, +) / UInt64(max(times.count, 1))
        print(
            "\(faultFree ? "fault-free" : "fault") seeds \(seeds.lowerBound)..<\(seeds.upperBound): agreement after "
                + "mean \(mean) ms, max \(times.max() ?? 0) ms\(faultFree ? " from start" : " after the faults stopped")"
        )
    }

    @Test(
        "schedules with crashes, restarts, leaves, partitions, loss, delay and duplicates converge", arguments: chunks)
    func faultSchedules(chunk: UInt64) {
        let size = Self.faultSchedules / UInt64(Self.chunks.count)
        Self.check(seeds: (chunk * size)..<((chunk + 1) * size), faultFree: false)
    }

    @Test("fault-free schedules never suspect anyone and converge after join", arguments: chunks)
    func faultFreeSchedules(chunk: UInt64) {
        let size = Self.faultFreeSchedules / UInt64(Self.chunks.count)
        Self.check(seeds: (10_000 + chunk * size)..<(10_000 + (chunk + 1) * size), faultFree: true)
    }

    @Test("replays DISTRI_SIM_SEED with a trace")
    func replay() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment["DISTRI_SIM_SEED"], let seed = UInt64(text) else { return }
        let faultFree = environment["DISTRI_SIM_FAULT_FREE"] == "1"
        let outcome = runSchedule(seed: seed, faultFree: faultFree, trace: environment["DISTRI_SIM_TRACE"] == "1")
        for line in outcome.trace ?? [] { print(line) }
        print(outcome)
        #expect(outcome.failure == nil, "\(outcome)")
    }
}
