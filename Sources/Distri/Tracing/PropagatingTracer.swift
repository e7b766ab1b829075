import Tracing
import W3CTraceContext

/// A tracer that records nothing and carries W3C Trace Context through: what an OpenTelemetry
/// tracer does with its sampler off. A node with it continues its callers' traces (a request's
/// `traceparent` goes on to the executor and to the replicas with a span id of this node's), keeps
/// the caller's sampled flag, and starts a trace id of its own for a request that brought none, at
/// the cost of making ids (`distri-node run --trace-propagation`; `distri-bench calls
/// --compare-tracing` measures it). Processes that export spans bootstrap swift-otel's tracer
/// instead (``CloudNodeConfiguration/tracer``).
public struct PropagatingTracer: Tracer {
    /// The spans it makes.
    public typealias Span = PropagatedSpan

    /// A propagating tracer.
    public init() {}

    /// A span under `context`'s: the same trace id and flags with a new span id, or a new trace
    /// when `context` carries none.
    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> PropagatedSpan {
        var context = context()
        let parent = context.w3cTraceContext
        context.w3cTraceContext = TraceContext(
            traceID: parent?.traceID ?? .random(), spanID: .random(), flags: parent?.flags ?? [],
            state: parent?.state ?? TraceState())
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
