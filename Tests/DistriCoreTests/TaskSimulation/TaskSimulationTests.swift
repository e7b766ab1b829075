import DistriCore
import Foundation
import Testing

/// Seeded schedules of a simulated cluster whose nodes route with the product's ``TaskRouter``:
/// crashes, restarts and partitions while clients send tasks; then faults stop. Checks that no task runs twice while its first executor lives and stays
/// reachable, and that every task completes once the cluster is healthy.
@Suite struct TaskSimulationTests {
    struct Outcome {
        var failure: String?
        var tasks = 0
        var executions = 0
    }

    static func runSchedule(seed: UInt64, trace: UInt64? = nil) -> Outcome {
        var setup = SimulationRandom(seed: seed)
        let count = Int.random(in: 3...9, using: &setup)
        var model = TaskCluster(nodeCount: count, seed: setup.next())
        model.traceTask = trace
        var cutOff: Set<Int> = []
        var task: UInt64 = 0
        // Fault phase: 5 s of tasks with crashes, restarts and partitions.
        for step in 0..<100 {
            let time = UInt64(step) * 50
            model.run(until: time)
            for _ in 0..<Int.random(in: 0...3, using: &setup) {
                task += 1
                model.issue(task)
            }
            let roll = Int.random(in: 0..<100, using: &setup)
            let victim = Int.random(in: 1..<count, using: &setup)  // node 0 always offers and stays up
            switch roll {
            case 0..<4: model.crash(victim)
            case 4..<8: model.restart(victim)
            case 8..<10:
                var groups = Array(repeating: 0, count: count)
                groups[victim] = 1
                cutOff.insert(victim)
                model.partition(groups)
            case 10..<13: model.partition(Array(repeating: 0, count: count))
            default: break
            }
        }
        // Faults stop: heal, restart everyone, let it settle.
        model.partition(Array(repeating: 0, count: count))
        for index in 0..<count { model.restart(index) }
        model.run(until: 5000 + 20_000)
        var outcome = Outcome(
            tasks: model.issued.count, executions: model.executions.values.reduce(0) { $0 + $1.count })
        let duplicates = model.duplicateExecutions(cutOff: cutOff)
        let unfinished = model.issued.subtracting(model.completed)
        if trace != nil { print(model.trace.joined(separator: "\n")) }
        if let first = duplicates.first {
            outcome.failure = "seed \(seed): \(first)"
        } else if !unfinished.isEmpty {
            outcome.failure =
                "seed \(seed): \(unfinished.count) tasks never completed, e.g. \(unfinished.sorted().prefix(3))"
        }
        return outcome
    }

    @Test("1,000 seeded fault schedules: tasks run at most once per live executor, and all complete", arguments: 0..<4)
    func schedules(part: Int) {
        if let replay = ProcessInfo.processInfo.environment["DISTRI_TASK_SIM_SEED"].flatMap(UInt64.init) {
            let traced = ProcessInfo.processInfo.environment["DISTRI_TASK_SIM_TRACE"].flatMap(UInt64.init)
            let outcome = Self.runSchedule(seed: replay, trace: traced)
            #expect(outcome.failure == nil, "\(outcome.failure ?? "")")
            return
        }
        var tasks = 0
        for seed in UInt64(part * 250)..<UInt64(part * 250 + 250) {
            let outcome = Self.runSchedule(seed: seed)
            tasks += outcome.tasks
            if let failure = outcome.failure {
                Issue.record("\(failure) — replay with DISTRI_TASK_SIM_SEED=\(seed) swift test --filter TaskSimulation")
                return
            }
        }
        #expect(tasks > 250 * 50)
    }
}
