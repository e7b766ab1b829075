import Histogram
import NIOCore

/// Figures of one load run.
struct LoadResult: Codable {
    var name: String
    var calls: Int
    var failures: Int
    var concurrency: Int
    var seconds: Double
    var callsPerSecond: Double
    var p50Micros: UInt64
    var p90Micros: UInt64
    var p99Micros: UInt64
    var maxMicros: UInt64
    /// CPU time per successful call in the measured window, of the cloud's process (a local child)
    /// and of this one; nil when not measured.
    var cloudCPUMicrosPerCall: Double? = nil
    var clientCPUMicrosPerCall: Double? = nil
}

/// Runs `total` calls with `concurrency` in flight at a time, all on one event loop so that the
/// driver itself adds no thread hops. `issue` starts one call and reports success or failure.
final class LoadDriver {
    typealias Issue = @Sendable (_ done: @escaping (Bool) -> Void) -> Void

    private let name: String
    private let loop: EventLoop
    private let total: Int
    private let concurrency: Int
    private let issue: Issue
    private var issued = 0
    private var finished = 0
    private var failures = 0
    private var latencies = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    private var started = NIODeadline.now()
    private var promise: EventLoopPromise<LoadResult>?

    init(name: String, loop: EventLoop, total: Int, concurrency: Int, issue: @escaping Issue) {
        self.name = name
        self.loop = loop
        self.total = total
        self.concurrency = concurrency
        self.issue = issue
    }

    /// Starts the run; must be called on `loop`.
    func run() -> EventLoopFuture<LoadResult> {
        loop.assertInEventLoop()
        let promise = loop.makePromise(of: LoadResult.self)
        self.promise = promise
        started = .now()
        for _ in 0..<min(concurrency, total) { next() }
        return promise.futureResult
    }

    private func next() {
        guard issued < total else { return }
        issued += 1
        let start = NIODeadline.now()
        issue { [self] ok in
            _ = latencies.record(UInt64(max(0, (NIODeadline.now() - start).nanoseconds / 1000)))
            if !ok { failures += 1 }
            finished += 1
            if finished == total {
                complete()
            } else {
                next()
            }
        }
    }

    private func complete() {
        let seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        promise?.succeed(
            LoadResult(
                name: name, calls: total, failures: failures, concurrency: concurrency, seconds: seconds,
                callsPerSecond: Double(total) / seconds, p50Micros: latencies.valueAtPercentile(50),
                p90Micros: latencies.valueAtPercentile(90), p99Micros: latencies.valueAtPercentile(99),
                maxMicros: latencies.max))
    }
}

/// Creates and runs a driver on `loop`.
extension LoadDriver {
    static func run(
        name: String, loop: EventLoop, total: Int, concurrency: Int, issue: @escaping Issue
    ) async throws -> LoadResult {
        try await loop.flatSubmit {
            LoadDriver(name: name, loop: loop, total: total, concurrency: concurrency, issue: issue).run()
        }.get()
    }
}
