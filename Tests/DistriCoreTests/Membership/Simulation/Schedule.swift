@testable import DistriCore

/// What one seeded schedule did.
struct ScheduleOutcome: CustomStringConvertible {
    let seed: UInt64
    let faultFree: Bool
    let nodeCount: Int
    /// Simulated ms from the end of the fault phase (or from the start, fault-free) to agreement.
    var convergedAfter: UInt64?
    /// Why the schedule failed, if it did.
    var failure: String?
    /// The event trace, when asked for.
    var trace: [String]?

    var description: String {
        let kind = faultFree ? "fault-free" : "fault"
        let result = failure.map { "FAILED: \($0)" } ?? "converged after \(convergedAfter ?? 0) ms"
        return "\(kind) schedule seed \(seed) with \(nodeCount) nodes: \(result)"
    }

    /// How to replay a failing seed.
    var replayHint: String {
        "replay with: DISTRI_SIM_SEED=\(seed)\(faultFree ? " DISTRI_SIM_FAULT_FREE=1" : "") DISTRI_SIM_TRACE=1 "
            + "swift test --filter MembershipSimulationTests/replay"
    }
}

/// How long the faults last and how long the cluster then has to agree.
enum ScheduleLimits {
    static let convergenceDeadline: UInt64 = 30_000
    static let checkEvery: UInt64 = 100
    static let faultFreeDuration: UInt64 = 4_000
}

/// Runs one seeded schedule of 3 to 9 nodes.
///
/// With faults: all nodes start, then for 2 to 4 simulated seconds the network drops up to 20 % of
/// messages, delays them up to 50 ms (so reorders them) and duplicates some, while nodes crash, restart
/// (at a higher or a lower incarnation), leave gracefully and are partitioned. Then the faults stop
/// (partitions healed, loss off, delay ≤ 5 ms, each crashed node restarted or left dead) and every
/// running node must, within 30 simulated seconds, see exactly the running nodes as alive and every
/// other node as dead, left or forgotten.
///
/// Fault-free: nodes start within 300 ms with delays ≤ 5 ms and no loss; no node may ever be marked
/// suspect or dead, and all views must agree.
func runSchedule(seed: UInt64, faultFree: Bool, trace: Bool = false) -> ScheduleOutcome {
    var random = SimulationRandom(seed: seed)
    let nodeCount = Int.random(in: 3...9, using: &random)
    var cluster = SimulatedCluster(nodeCount: nodeCount, seed: random.next())
    if trace { cluster.trace = [] }
    var outcome = ScheduleOutcome(seed: seed, faultFree: faultFree, nodeCount: nodeCount)

    // Everyone starts within 300 ms.
    var starts = (0..<nodeCount).map { ($0, UInt64.random(in: 0...300, using: &random)) }
    starts.sort { $0.1 < $1.1 }
    for (index, time) in starts {
        cluster.run(until: time)
        cluster.start(index, incarnation: 1)
    }

    if faultFree {
        cluster.maxDelay = 5
        var time: UInt64 = 300
        while time < ScheduleLimits.faultFreeDuration {
            time += ScheduleLimits.checkEvery
            cluster.run(until: time)
            if outcome.convergedAfter == nil && cluster.disagreement() == nil { outcome.convergedAfter = time }
        }
        if let bad = cluster.statusChanges.first(where: { $0.member.status != .alive }) {
            outcome.failure =
                "\(cluster.nodes[bad.observer].id) marked \(bad.member.id) \(bad.member.status) at \(bad.time) ms"
        } else if let problem = cluster.disagreement() {
            outcome.failure = "views differ at the end: \(problem)"
        }
        outcome.trace = cluster.trace
        return outcome
    }

    // The fault phase.
    let faultEnd = UInt64.random(in: 2_000...4_000, using: &random)
    var time: UInt64 = 300
    while time < faultEnd {
        time = min(faultEnd, time + UInt64.random(in: 100...700, using: &random))
        cluster.run(until: time)
        let running = cluster.runningNodes
        let stopped = cluster.nodes.indices.filter { !cluster.nodes[$0].isRunning }
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<18 where running.count > 1:
            cluster.crash(running.randomElement(using: &random)!)
        case 18..<34 where !stopped.isEmpty:
            let index = stopped.randomElement(using: &random)!
            // A fresh incarnation like a wall clock, or a lower one than before the crash.
            let incarnation = random.chance(0.5) ? time : UInt64.random(in: 0...2, using: &random)
            cluster.start(index, incarnation: incarnation)
        case 34..<40 where running.count > 1:
            cluster.leave(running.randomElement(using: &random)!)
        case 40..<55:
            cluster.partition = (0..<nodeCount).map { _ in Int.random(in: 0...1, using: &random) }
        case 55..<65:
            cluster.partition = Array(repeating: 0, count: nodeCount)
        case 65..<75 where !running.isEmpty:
            let load = Double.random(in: 0...2, using: &random)
            cluster.updateMetadata(running.randomElement(using: &random)!, MemberMetadata(load: load))
        default:
            cluster.lossRate = Double.random(in: 0...0.2, using: &random)
            cluster.duplicateRate = Double.random(in: 0...0.1, using: &random)
            cluster.maxDelay = UInt64.random(in: 0...50, using: &random)
        }
    }

    // Faults stop.
    cluster.run(until: faultEnd)
    cluster.partition = Array(repeating: 0, count: nodeCount)
    cluster.lossRate = 0
    cluster.duplicateRate = 0
    cluster.maxDelay = 5
    for index in cluster.nodes.indices where !cluster.nodes[index].isRunning && random.chance(0.5) {
        let incarnation = random.chance(0.5) ? faultEnd : 0
        cluster.start(index, incarnation: incarnation)
    }
    if cluster.runningNodes.isEmpty {
        cluster.start(0, incarnation: faultEnd)
    }

    time = faultEnd
    while time < faultEnd + ScheduleLimits.convergenceDeadline {
        time += ScheduleLimits.checkEvery
        cluster.run(until: time)
        if cluster.disagreement() == nil {
            outcome.convergedAfter = time - faultEnd
            break
        }
    }
    if outcome.convergedAfter == nil {
        outcome.failure = "no agreement 30 s after the faults stopped: \(cluster.disagreement() ?? "")"
    } else if cluster.decodeFailures > 0 {
        outcome.failure = "\(cluster.decodeFailures) messages failed to decode"
    }
    outcome.trace = cluster.trace
    return outcome
}
