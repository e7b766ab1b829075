import DistriClient
import DistriCore
import DistriWire
import Histogram
import NIOCore
import Tracing

/// A request on a node, as its ``TaskRouter`` carries it: the service, the request, and where to
/// answer. A class: the router moves it through its queues and tables, and a reference is one retain
/// where the fields would be a dozen.
package final class PendingTask: Sendable {
    package let service: RegisteredService
    package let request: ServiceRequest
    package let responder: Responder
    package let arrival: NIODeadline
    /// The caller's task id; 0 = no deduplication.
    package let taskID: UInt64
    /// The request's `distri.request` span, when the node traces.
    package let span: (any Span)?

    package init(
        service: RegisteredService, request: ServiceRequest, responder: Responder, arrival: NIODeadline, taskID: UInt64,
        span: (any Span)? = nil
    ) {
        self.service = service
        self.request = request
        self.responder = responder
        self.arrival = arrival
        self.taskID = taskID
        self.span = span
    }

    /// Replies to the caller and ends the request's span.
    package func answer(_ result: Result<ByteBuffer, WireErrorReply>) {
        responder.reply(result)
        guard let span else { return }
        if case .failure(let reply) = result {
            span.attributes["distri.error"] = reply.code.description
            span.setStatus(SpanStatus(code: .error, message: reply.message))
        }
        span.end()
    }
}

/// The router of a node's shell: tasks are ``PendingTask``s, answers wire results, members reached at
/// ``NodeAddress``es.
package typealias NodeTaskRouter = TaskRouter<PendingTask, Result<ByteBuffer, WireErrorReply>, NodeAddress>

/// The node's routing state and counters, kept together under one lock so that a request takes it
/// once on arrival and once on completion.
package struct NodeRuntime {
    package var router: NodeTaskRouter
    package var counters: NodeStats
    /// The client the node forwards and asks other members with, once it joined a cluster.
    package var peers: Client?
    package var serviceTimes = Histogram<UInt64>(
        highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)
    /// Calls run here, by service and outcome: the `Stats` service and the metrics read the same counts.
    package var calls: [String: [String: UInt64]] = [:]
    /// Makes each service's run-time recorder for the metrics (nil: no metrics).
    package var makeServiceTimes: ServiceTimeRecorders?
    package var serviceTimeRecorders: [String: any ServiceTimeRecorder] = [:]

    package init(nodeID: String, address: String, settings: NodeTaskRouter.Settings, seed: UInt64) {
        router = NodeTaskRouter(localID: nodeID, settings: settings, seed: seed)
        counters = NodeStats(nodeID: nodeID, address: address)
    }

    /// Records the end of a request of `service` that ran here with `outcome`; returns the service's
    /// run-time recorder for the metrics, if any, to be used after the lock.
    package mutating func record(
        completedAt now: NIODeadline, arrival: NIODeadline, service: String, outcome: String
    ) -> (any ServiceTimeRecorder)? {
        let micros = UInt64(max(0, (now - arrival).nanoseconds / 1000))
        _ = serviceTimes.record(micros)
        counters.totalServiceTimeSeconds += Double(micros) / 1e6
        if outcome == Self.succeeded { counters.completed += 1 } else { counters.failed += 1 }
        calls[service, default: [:]][outcome, default: 0] += 1
        guard let makeServiceTimes else { return nil }
        if let recorder = serviceTimeRecorders[service] { return recorder }
        let recorder = makeServiceTimes(service)
        serviceTimeRecorders[service] = recorder
        return recorder
    }

    /// The outcome of a call that succeeded.
    package static let succeeded = "ok"

    /// A consistent copy of the stats, the router's counts included.
    package func snapshot(uptime: TimeAmount, collections: [String: Int]) -> NodeStats {
        var stats = counters
        let routed = router.counters
        stats.accepted = routed.accepted
        stats.rejectedBusy = routed.rejectedBusy
        stats.failed += routed.refusedDraining + routed.expiredInQueue
        stats.cluster.electionsWon = routed.electionsWon
        stats.cluster.tasksForwarded = routed.tasksForwarded
        stats.cluster.failovers = routed.failovers
        stats.cluster.deduplicated = routed.deduplicated
        stats.inFlight = router.inFlight
        stats.queued = router.queued
        stats.capacity = router.settings.capacity
        stats.draining = router.isDraining
        let finished = stats.completed + stats.failed
        stats.averageServiceTimeSeconds = finished == 0 ? 0 : stats.totalServiceTimeSeconds / Double(finished)
        if serviceTimes.totalCount > 0 {
            stats.p50ServiceTimeSeconds = Double(serviceTimes.valueAtPercentile(50)) / 1e6
            stats.p99ServiceTimeSeconds = Double(serviceTimes.valueAtPercentile(99)) / 1e6
        }
        stats.uptimeSeconds = Double(uptime.nanoseconds) / 1e9
        stats.collections = collections
        stats.calls = calls
        return stats
    }
}
