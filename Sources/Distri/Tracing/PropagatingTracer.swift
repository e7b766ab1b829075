import Synchronization
import Tracing
import W3CTraceContext

/// A tracer that records nothing and carries W3C Trace Context through: what an OpenTelemetry
/// tracer does with its sampler off. A node with it continues its callers' traces (a request's
/// `traceparent` goes on to the executor and to the replicas with a span id of this node's) and
/// keeps the caller's sampled flag; a request that brought no trace stays untraced (a server or
/// internal span without a parent makes no ids), while a client span without one (a caller that
/// originates calls, such as `Client`) starts a trace (`distri-node run --trace-propagation`;
/// `distri-bench calls --compare-tracing` measures it). Ids come from a fast generator seeded from
/// the system's: they must be unique, not secret. Processes that export spans bootstrap
/// swift-otel's tracer instead (``CloudNodeConfiguration/tracer``).
public struct PropagatingTracer: Tracer {
    /// The spans it makes.
    public typealias Span = PropagatedSpan

    private let ids = IDGenerator()

    /// A propagating tracer.
    public init() {}

    /// A span under `context`'s: the same trace id and flags with a new span id; without a trace in
    /// `context`, a new trace for a client or producer span and none for the others.
    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> PropagatedSpan {
        var context = context()
        if let parent = context.w3cTraceContext {
            context.w3cTraceContext = TraceContext(
                traceID: parent.traceID, spanID: ids.spanID(), flags: parent.flags, state: parent.state)
        } else if kind == .client || kind == .producer {
            context.w3cTraceContext = TraceContext(
                traceID: ids.traceID(), spanID: ids.spanID(), flags: [], state: TraceState())
        }
        return PropagatedSpan(context: context, operationName: operationName)
    }

    /// Nothing to flush: nothing is recorded.
    public func forceFlush() {}

    /// Writes `traceparent` (and `tracestate`, if any) of `context`'s trace.
    public func inject<Carrier, Inject: Injector>(
        _ context: ServiceContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let trace = context.w3cTraceContext else { return }
        injector.inject(trace.traceParentHeaderValue, forKey: "traceparent", into: &carrier)
        if let state = trace.traceStateHeaderValue { injector.inject(state, forKey: "tracestate", into: &carrier) }
    }

    /// Reads `traceparent` and `tracestate` into `context`; a malformed `traceparent` is ignored.
    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let parent = extractor.extract(key: "traceparent", from: carrier),
            let trace = try? TraceContext(
                traceParentHeaderValue: parent,
                traceStateHeaderValue: extractor.extract(key: "tracestate", from: carrier))
        else { return }
        context.w3cTraceContext = trace
    }
}

/// A span of ``PropagatingTracer``: it carries its W3C context and records nothing.
public struct PropagatedSpan: Tracing.Span {
    /// The span's context, holding its W3C trace context.
    public let context: ServiceContext
    /// The operation's name.
    public var operationName: String {
        get { storedName }
        nonmutating set {}
    }
    private let storedName: String

    init(context: ServiceContext, operationName: String) {
        self.context = context
        self.storedName = operationName
    }

    /// Never: the span records nothing.
    public var isRecording: Bool { false }
    /// None are kept.
    public var attributes: SpanAttributes {
        get { [:] }
        nonmutating set {}
    }
    /// Ignored.
    public func setStatus(_ status: SpanStatus) {}
    /// Ignored.
    public func addEvent(_ event: SpanEvent) {}
    /// Ignored.
    public func addLink(_ link: SpanLink) {}
    /// Ignored.
    public func recordError<Instant: TracerInstant>(
        _ error: Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant
    ) {}
    /// Ignored: there is nothing to report.
    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {}
}

/// Span and trace ids from SplitMix64, seeded from the system's generator once: a lock and a few
/// multiplications per id instead of a system call.
private final class IDGenerator: Sendable {
    private let state: Mutex<UInt64>

    init() {
        var system = SystemRandomNumberGenerator()
        state = Mutex(system.next())
    }

    fileprivate func next() -> UInt64 {
        state.withLock { state in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    func spanID() -> SpanID {
        var source = Source(generator: self)
        return SpanID.random(using: &source)
    }

    func traceID() -> TraceID {
        var source = Source(generator: self)
        return TraceID.random(using: &source)
    }

    private struct Source: RandomNumberGenerator {
        let generator: IDGenerator
        mutating func next() -> UInt64 { generator.next() }
    }
}

/// The W3C trace context in a service context.
private enum W3CTraceContextKey: ServiceContextKey {
    typealias Value = TraceContext
}

extension ServiceContext {
    /// The W3C trace context (trace id, span id, flags, state) of the current span, as
    /// ``PropagatingTracer`` keeps it.
    public var w3cTraceContext: TraceContext? {
        get { self[W3CTraceContextKey.self] }
        set { self[W3CTraceContextKey.self] = newValue }
    }
}
