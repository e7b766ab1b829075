import Histogram
import NIOCore

/// Keeps `concurrency` calls in flight for a warm-up and then a measured window, all on one event
/// loop like ``LoadDriver``. Calls that complete inside the window count: throughput is their
/// successes per second, latencies are those of the successes. After the window no new call starts
/// and the run ends once the calls in flight are back, so runs do not overlap.
final class TimedLoadDriver {
    private let name: String
    private let loop: EventLoop
    private let concurrency: Int
    private let warmup: TimeAmount
    private let duration: TimeAmount
    private let issue: LoadDriver.Issue
    private var windowStart = NIODeadline.now()
    private var windowEnd = NIODeadline.now()
    private var inFlight = 0
    private var calls = 0
    private var failures = 0
    private var latencies = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    private var promise: EventLoopPromise<LoadResult>?

    init(
        name: String, loop: EventLoop, concurrency: Int, warmup: TimeAmount, duration: TimeAmount,
        issue: @escaping LoadDriver.Issue
    ) {
        self.name = name
        self.loop = loop
        self.concurrency = concurrency
        self.warmup = warmup
        self.duration = duration
        self.issue = issue
    }

    /// Starts the run; must be called on `loop`.
    func run() -> EventLoopFuture<LoadResult> {
        loop.assertInEventLoop()
        let promise = loop.makePromise(of: LoadResult.self)
        self.promise = promise
        windowStart = .now() + warmup
        windowEnd = windowStart + duration
        for _ in 0..<concurrency { next() }
        return promise.futureResult
    }

    private func next() {
        let start = NIODeadline.now()
        guard start < windowEnd else {
            if inFlight == 0 { complete() }
            return
        }
        inFlight += 1
        issue { [self] ok in
            inFlight -= 1
            let end = NIODeadline.now()
            if end >= windowStart && end <= windowEnd {
                calls += 1
                if ok {
                    _ = latencies.record(UInt64(max(0, (end - start).nanoseconds / 1000)))
                } else {
                    failures += 1
                }
            }
            // A call that fails at once completes inline: go round the loop instead of recursing.
            if ok { next() } else { loop.assumeIsolated().execute { self.next() } }
        }
    }

    private func complete() {
        guard let promise else { return }
        self.promise = nil
        let seconds = Double(duration.nanoseconds) / 1e9
        promise.succeed(
            LoadResult(
                name: name, calls: calls, failures: failures, concurrency: concurrency, seconds: seconds,
                callsPerSecond: Double(calls - failures) / seconds, p50Micros: latencies.valueAtPercentile(50),
                p90Micros: latencies.valueAtPercentile(90), p99Micros: latencies.valueAtPercentile(99),
                maxMicros: latencies.max))
    }
}

extension TimedLoadDriver {
    /// Creates and runs a driver on `loop`.
    static func run(
        name: String, loop: EventLoop, concurrency: Int, warmup: TimeAmount, duration: TimeAmount,
        issue: @escaping LoadDriver.Issue
    ) async throws -> LoadResult {
        try await loop.flatSubmit {
            TimedLoadDriver(
                name: name, loop: loop, concurrency: concurrency, warmup: warmup, duration: duration, issue: issue
            ).run()
        }.get()
    }
}
