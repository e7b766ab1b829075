import DistriCore
import DistriServer
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// A node's metrics in the Prometheus text format, from the numbers its `Stats` service reports (one
/// source): counters advance by what the stats gained since the last scrape, gauges take the stats'
/// values, and each service's run times go into a histogram as they happen. Names follow Prometheus
/// conventions: a `distri_` prefix, base units (`_seconds`, `_bytes`), `_total` on counters.
///
/// The metrics are swift-metrics' (`Counter`, `Meter`, `Timer`), made through ``factory``: swift-prometheus's
/// `PrometheusMetricsFactory` over this node's own `PrometheusCollectorRegistry`, so several nodes in one
/// process keep separate numbers. ``bootstrapProcessMetrics()`` makes that factory the process's
/// `MetricsSystem` too, so the metrics of libraries that use swift-metrics appear on the same `/metrics`.
public final class NodeMetrics: Sendable {
    /// Upper bounds of the service-time histogram's buckets: 100 µs to 30 s.
    static let serviceTimeBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
    ]
    static let serviceTimeLabel = "distri_service_time_seconds"
    static let serviceTimeHelp = "How long calls ran on this node, from arrival to reply, by service."

    private struct Series {
        /// The counters by name and labels, with what each showed at the last scrape.
        var counters: [String: CounterSeries] = [:]
        /// The gauges of the last scrape, by name and labels: one the stats no longer list (a dropped
        /// collection, a departed peer) is destroyed, and so leaves the exposition instead of keeping
        /// its last value.
        var gauges: [String: Meter] = [:]
    }

    /// What `/metrics` shows: this node's metrics, and the process's when it was bootstrapped with them.
    let registry: PrometheusCollectorRegistry
    private let nodeFactory: NodeMetricsFactory
    private let series = NIOLockedValueBox(Series())

    public init() {
        let registry = PrometheusCollectorRegistry()
        var prometheus = PrometheusMetricsFactory(registry: registry)
        prometheus.durationHistogramBuckets[Self.serviceTimeLabel] = Self.serviceTimeBuckets
        self.registry = registry
        self.nodeFactory = NodeMetricsFactory(prometheus: prometheus)
        nodeFactory.describe(Self.serviceTimeLabel, Self.serviceTimeHelp)
    }

    /// swift-metrics' factory for this node's registry: what is made through it appears on this node's
    /// `/metrics`.
    public var factory: any MetricsFactory { nodeFactory }

    /// The run-time histogram of `service`.
    func serviceTimes(for service: String) -> any ServiceTimeRecorder {
        CoreMetrics.Timer(label: Self.serviceTimeLabel, dimensions: [("service", service)], factory: nodeFactory)
    }

    /// Bootstraps swift-metrics' global `MetricsSystem` with this node's ``factory``, so that metrics made
    /// without an explicit factory (by libraries) are served on this node's `/metrics`. swift-metrics
    /// allows one bootstrap per process: the first call through any `NodeMetrics` bootstraps and returns
    /// true; every later one changes nothing and returns false. (A bootstrap by other code before it
    /// cannot be detected, and swift-metrics stops the process then.)
    @discardableResult
    public func bootstrapProcessMetrics() -> Bool {
        Self.processBootstrapped.withLockedValue { bootstrapped in
            guard !bootstrapped else { return false }
            MetricsSystem.bootstrap(nodeFactory)
            bootstrapped = true
            return true
        }
    }

    private static let processBootstrapped = NIOLockedValueBox(false)

    /// The metrics now, as Prometheus text (version 0.0.4).
    public func render(_ stats: NodeStats) -> [UInt8] {
        series.withLockedValue { series in
            for sample in Self.counters(stats) { advance(sample, in: &series) }
            var current: [String: Meter] = [:]
            for sample in Self.gauges(stats) {
                let key = sample.key
                let meter =
                    series.gauges[key]
                    ?? {
                        nodeFactory.describe(sample.label, sample.help)
                        return Meter(label: sample.label, dimensions: sample.labels, factory: nodeFactory)
                    }()
                meter.set(sample.value)
                current[key] = meter
            }
            for (key, meter) in series.gauges where current[key] == nil { meter.destroy() }
            series.gauges = current
        }
        return registry.emitToBuffer()
    }

    private func advance(_ sample: MetricSample, in series: inout Series) {
        let key = sample.key
        guard let current = series.counters[key] else {
            nodeFactory.describe(sample.label, sample.help)
            let counter: CounterSeries
            if sample.fractional {
                counter = .fractional(
                    FloatingPointCounter(label: sample.label, dimensions: sample.labels, factory: nodeFactory), 0)
            } else {
                counter = .integral(
                    CoreMetrics.Counter(label: sample.label, dimensions: sample.labels, factory: nodeFactory), 0)
            }
            series.counters[key] = counter.advanced(to: sample.value)
            return
        }
        series.counters[key] = current.advanced(to: sample.value)
    }
}

/// One counter with what it showed at the last scrape.
private enum CounterSeries {
    case integral(CoreMetrics.Counter, UInt64)
    case fractional(FloatingPointCounter, Double)

    /// Increments the counter by what `value` gained over the last scrape. A counter that went down (a
    /// node's replica reset) is reported from its new value on.
    func advanced(to value: Double) -> CounterSeries {
        switch self {
        case .integral(let counter, let before):
            let now = UInt64(max(0, value))
            guard now > before else { return self }
            counter.increment(by: Int64(clamping: now - before))
            return .integral(counter, now)
        case .fractional(let counter, let before):
            guard value > before else { return self }
            counter.increment(by: value - before)
            return .fractional(counter, value)
        }
    }
}

/// One value of one metric; `name` without the `distri_` namespace.
struct MetricSample {
    var name: String
    var labels: [(String, String)] = []
    var value: Double
    var help: String
    /// A counter of fractions (seconds), not of whole things.
    var fractional = false

    /// The metric's name with its labels: one time series.
    var key: String { name + labels.map { "\u{1}\($0.0)=\($0.1)" }.joined() }

    /// The metric's full name: swift-metrics' label.
    var label: String { "distri_" + name }
}

extension CoreMetrics.Timer: ServiceTimeRecorder {
    package func record(nanoseconds: Int64) {
        recordNanoseconds(nanoseconds)
    }
}

/// swift-metrics' factory for one node: swift-prometheus's `PrometheusMetricsFactory` over the node's
/// registry, except that the metrics the node described (``describe(_:_:)``) are registered with their
/// help text, which `PrometheusMetricsFactory` leaves empty (and a registry refuses a second, different
/// help text for a name, so the two cannot be mixed per name).
struct NodeMetricsFactory: MetricsFactory {
    let prometheus: PrometheusMetricsFactory
    /// Help texts by metric name (swift-metrics' label).
    private let helpTexts = NIOLockedValueBox<[String: String]>([:])

    init(prometheus: PrometheusMetricsFactory) {
        self.prometheus = prometheus
    }

    /// Gives the metric `label` its help text; call before making it.
    func describe(_ label: String, _ help: String) {
        helpTexts.withLockedValue { $0[label] = help }
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor? {
        helpTexts.withLockedValue { $0[label] }.map {
            MetricNameDescriptor(metricName: label, unitName: "", helpText: $0)
        }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let descriptor = descriptor(label) else {
            return prometheus.makeCounter(label: label, dimensions: dimensions)
        }
        return prometheus.registry.makeCounter(descriptor: descriptor, labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let descriptor = descriptor(label) else {
            return prometheus.makeFloatingPointCounter(label: label, dimensions: dimensions)
        }
        return prometheus.registry.makeCounter(descriptor: descriptor, labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard !aggregate, let descriptor = descriptor(label) else {
            return prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        return prometheus.registry.makeGauge(descriptor: descriptor, labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let descriptor = descriptor(label) else {
            return prometheus.makeMeter(label: label, dimensions: dimensions)
        }
        return prometheus.registry.makeGauge(descriptor: descriptor, labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let descriptor = descriptor(label) else {
            return prometheus.makeTimer(label: label, dimensions: dimensions)
        }
        let buckets = prometheus.durationHistogramBuckets[label] ?? prometheus.defaultDurationHistogramBuckets
        return prometheus.registry.makeDurationHistogram(descriptor: descriptor, labels: dimensions, buckets: buckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        prometheus.destroyFloatingPointCounter(handler)
    }
    func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { prometheus.destroyTimer(handler) }
}
