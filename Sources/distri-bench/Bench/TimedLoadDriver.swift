import Foundation
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
    /// The cloud's process, when it runs here, whose CPU time is measured with this one's.
    private let cloudProcess: Int32?
    /// Wall time and CPU seconds of (cloud, client) at the first completion in the window and after it.
    private var cpuAtStart: (at: NIODeadline, cloud: Double?, client: Double?)?
    private var cpuAtEnd: (at: NIODeadline, cloud: Double?, client: Double?)?

    init(
        name: String, loop: EventLoop, concurrency: Int, warmup: TimeAmount, duration: TimeAmount,
        cloudProcess: Int32? = nil, issue: @escaping LoadDriver.Issue
    ) {
        self.cloudProcess = cloudProcess
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

    private func cpuSample() -> (at: NIODeadline, cloud: Double?, client: Double?) {
        (.now(), cloudProcess.flatMap(ProcessCPU.seconds(of:)), ProcessCPU.seconds(of: getpid()))
    }

    private func next() {
        let start = NIODeadline.now()
        if start >= windowStart && cpuAtStart == nil { cpuAtStart = cpuSample() }
        guard start < windowEnd else {
            if cpuAtEnd == nil { cpuAtEnd = cpuSample() }
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
        var result = LoadResult(
            name: name, calls: calls, failures: failures, concurrency: concurrency, seconds: seconds,
            callsPerSecond: Double(calls - failures) / seconds, p50Micros: latencies.valueAtPercentile(50),
            p90Micros: latencies.valueAtPercentile(90), p99Micros: latencies.valueAtPercentile(99),
            maxMicros: latencies.max)
        if let first = cpuAtStart, let last = cpuAtEnd, result.callsPerSecond > 0 {
            // CPU seconds per wall second between the samples, over the calls completed per second.
            let wall = Double((last.at - first.at).nanoseconds) / 1e9
            func perCall(_ before: Double?, _ after: Double?) -> Double? {
                guard let before, let after, wall > 0 else { return nil }
                return (after - before) / wall / result.callsPerSecond * 1e6
            }
            result.cloudCPUMicrosPerCall = perCall(first.cloud, last.cloud)
            result.clientCPUMicrosPerCall = perCall(first.client, last.client)
        }
        promise.succeed(result)
    }
}

extension TimedLoadDriver {
    /// Creates and runs a driver on `loop`.
    static func run(
        name: String, loop: EventLoop, concurrency: Int, warmup: TimeAmount, duration: TimeAmount,
        cloudProcess: Int32? = nil, issue: @escaping LoadDriver.Issue
    ) async throws -> LoadResult {
        try await loop.flatSubmit {
            TimedLoadDriver(
                name: name, loop: loop, concurrency: concurrency, warmup: warmup, duration: duration,
                cloudProcess: cloudProcess, issue: issue
            ).run()
        }.get()
    }
}
