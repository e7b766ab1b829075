import DistriCore
import DistriWire
import Histogram
import NIOCore

/// A task admitted (or waiting) on a node.
struct PendingTask: Sendable {
    var service: RegisteredService
    var request: ServiceRequest
    var responder: Responder
    var arrival: NIODeadline
    /// The caller's task id; 0 = no deduplication.
    var taskID: UInt64
}

/// The node's mutable counters and admission state, kept together under one lock so that a request
/// takes it once on arrival and once on completion.
struct NodeRuntime {
    var admission: AdmissionControl<PendingTask>
    var dedup: DedupWindow<Result<ByteBuffer, WireErrorReply>, Responder>
    var counters: NodeStats
    var serviceTimes = Histogram<UInt64>(
        highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)

    init(nodeID: String, address: String, capacity: Int, queueLimit: Int, settings: ClusterSettings) {
        admission = AdmissionControl(capacity: capacity, queueLimit: queueLimit)
        dedup = DedupWindow(
            capacity: settings.dedupCapacity, retention: settings.dedupRetentionMillis, costBudget: settings.dedupBytes)
        counters = NodeStats(nodeID: nodeID, address: address)
    }

    /// Records the end of a request that ran (or was refused after admission).
    mutating func record(completedAt now: NIODeadline, arrival: NIODeadline, succeeded: Bool) {
        let micros = UInt64(max(0, (now - arrival).nanoseconds / 1000))
        _ = serviceTimes.record(micros)
        counters.totalServiceTimeSeconds += Double(micros) / 1e6
        if succeeded { counters.completed += 1 } else { counters.failed += 1 }
    }

    /// A consistent copy of the stats.
    func snapshot(uptime: TimeAmount, collections: [String: Int]) -> NodeStats {
        var stats = counters
        stats.inFlight = admission.inFlight
        stats.queued = admission.queued
        stats.capacity = admission.capacity
        stats.draining = admission.isDraining
        let finished = stats.completed + stats.failed
        stats.averageServiceTimeSeconds = finished == 0 ? 0 : stats.totalServiceTimeSeconds / Double(finished)
        if serviceTimes.totalCount > 0 {
            stats.p50ServiceTimeSeconds = Double(serviceTimes.valueAtPercentile(50)) / 1e6
            stats.p99ServiceTimeSeconds = Double(serviceTimes.valueAtPercentile(99)) / 1e6
        }
        stats.uptimeSeconds = Double(uptime.nanoseconds) / 1e9
        stats.collections = collections
        return stats
    }
}
