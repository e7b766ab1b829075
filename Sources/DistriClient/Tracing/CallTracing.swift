import DistriWire
import NIOCore
import Tracing

/// Writes a tracer's propagation fields (W3C `traceparent` and `tracestate` with OpenTelemetry)
/// into a request's `TraceFields`.
public struct TraceFieldsInjector: Injector {
    /// An injector.
    public init() {}

    /// Sets `key` to `value` in the request's fields (dropped beyond their bounds).
    public func inject(_ value: String, forKey key: String, into carrier: inout TraceFields) {
        carrier.set(value, forKey: key)
    }
}

/// Reads a tracer's propagation fields from a request's `TraceFields`.
public struct TraceFieldsExtractor: Extractor {
    /// An extractor.
    public init() {}

    /// The value of `key` in the request's fields, if present.
    public func extract(key: String, from carrier: TraceFields) -> String? { carrier[key] }
}

extension Tracer {
    /// Starts a span of a Distri operation with the attributes every one carries: the RPC system,
    /// the service and the task id.
    package func startDistriSpan(
        _ name: String, context: ServiceContext, kind: SpanKind, service: String, taskID: UInt64
    ) -> any Tracing.Span {
        let span = startSpan(name, context: context, ofKind: kind)
        guard span.isRecording else { return span }
        span.attributes["rpc.system"] = "distri"
        span.attributes["rpc.method"] = service
        if taskID != 0 { span.attributes["distri.task.id"] = String(taskID) }
        return span
    }

    /// The context a request's trace fields carry, under `base`.
    package func extracted(from fields: TraceFields, base: ServiceContext = .topLevel) -> ServiceContext {
        var context = base
        if !fields.isEmpty { extract(fields, into: &context, using: TraceFieldsExtractor()) }
        return context
    }

    /// `context`'s propagation fields, to send with a request.
    package func fields(for context: ServiceContext) -> TraceFields {
        var fields = TraceFields()
        inject(context, into: &fields, using: TraceFieldsInjector())
        return fields
    }
}

extension EventLoopFuture {
    /// Ends `span` when the future completes, recording a failure as the span's error.
    package func ending(_ span: (any Tracing.Span)?) -> EventLoopFuture<Value> {
        // A span that records nothing has nothing to end: no callback for it.
        guard let span, span.isRecording else { return self }
        whenComplete { result in
            if case .failure(let error) = result {
                span.recordError(error)
                span.setStatus(SpanStatus(code: .error))
            }
            span.end()
        }
        return self
    }
}
