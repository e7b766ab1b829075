import DistriClient
import DistriTestSupport
import Foundation
import InMemoryTracing
import NIOConcurrencyHelpers
import NIOCore
import Testing
import Tracing

@testable import Distri

/// Tracing across nodes: the trace context travels in the request (docs/wire-format.md), so a
/// forwarded call is one trace from the client through the entry node to the executor.
@Suite struct TracingTests {
    /// Tracers whose span ids are unique across tracers (each names its own), as real ones are.
    private static func tracer(_ name: String) -> InMemoryTracer {
        let counter = SpanIDCounter()
        return InMemoryTracer(
            idGenerator: .init(
                nextTraceID: { "trace-\(name)-\(counter.next())" }, nextSpanID: { "span-\(name)-\(counter.next())" }))
    }

    @Test("a forwarded call is one trace: client, entry node (request, election, forward) and executor share its id")
    func forwardedCallIsOneTrace() async throws {
        let entryTracer = Self.tracer("entry")
        let executorTracer = Self.tracer("executor")
        let clientTracer = Self.tracer("client")
        try await withCloud(
            nodes: 2, clustered: true, insecure: true,
            // A one-slot entry node always finds the 64-slot node less loaded: the call is forwarded.
            configure: { configuration in
                let entry = configuration.seeds.isEmpty
                configuration.capacity = entry ? 1 : 64
                configuration.tracer = entry ? entryTracer : executorTracer
            },
            setUp: { node in node.services.register(RegisteredService(name: "Echo", execution: .inline { $0.data })) }
        ) { nodes, addresses in
            let client = Client(nodes: [addresses[0]], configuration: ClientConfiguration(tracer: clientTracer))
            let forwardedBefore = nodes[0].stats().cluster.tasksForwarded
            let reply = try await client.call(ByteBuffer(bytes: [7, 8, 9]), service: "Echo", node: addresses[0]).get()
            #expect(Array(buffer: reply) == [7, 8, 9])
            #expect(nodes[0].stats().cluster.tasksForwarded == forwardedBefore + 1)
            await client.shutdown()

            let call = try #require(clientTracer.finishedSpans.first { $0.operationName == "distri.call" })
            let entrySpans = entryTracer.finishedSpans.filter { $0.traceID == call.traceID }
            let executorSpans = executorTracer.finishedSpans.filter { $0.traceID == call.traceID }
            let request = try #require(entrySpans.first { $0.operationName == "distri.request" })
            let forward = try #require(entrySpans.first { $0.operationName == "distri.forward" })
            let executed = try #require(executorSpans.first { $0.operationName == "distri.request" })
            let execution = try #require(executorSpans.first { $0.operationName == "distri.execute" })
            // One trace, parent by parent: call → request (entry) → forward → request (executor) → execute.
            #expect(request.parentSpanID == call.spanID)
            #expect(forward.parentSpanID == request.spanID)
            #expect(executed.parentSpanID == forward.spanID)
            #expect(execution.parentSpanID == executed.spanID)
            #expect(request.kind == .server && forward.kind == .client && call.kind == .client)
            #expect(request.attributes.get("rpc.method") == .string("Echo"))
            #expect(request.events.contains { $0.name == "distri.elected" })
            #expect(!entrySpans.contains { $0.operationName == "distri.execute" }, "the entry node did not run it")
        }
    }

    @Test("without tracers nothing is carried: the request has no trace fields")
    func untracedRequestCarriesNothing() throws {
        let request = WireRequest(service: "Echo", data: ByteBuffer(bytes: [1]))
        let encoded = request.encode(allocator: ByteBufferAllocator())
        #expect(encoded.readableBytes == request.encodedSize)
        var traced = request
        traced.traceFields.set("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", forKey: "traceparent")
        let tracedBytes = traced.encode(allocator: ByteBufferAllocator())
        #expect(tracedBytes.readableBytes == traced.encodedSize)
        #expect(try WireRequest.decode(tracedBytes) == traced)
        #expect(try WireRequest.decode(encoded).traceFields.isEmpty)
    }

    @Test("trace fields are bounded: a ninth field is not added, and a request claiming nine is malformed")
    func traceFieldsAreBounded() throws {
        var fields = TraceFields()
        let added = (0..<TraceFields.maxFields).map { fields.set("v", forKey: "k\($0)") }
        #expect(added.allSatisfy { $0 })
        let ninth = fields.set("v", forKey: "one-too-many")
        let tooLong = fields.set(String(repeating: "x", count: TraceFields.maxValueBytes + 1), forKey: "k0")
        #expect(!ninth && !tooLong && fields.fields.count == TraceFields.maxFields)
        // deadline, routing with the traced bit, task id, then a field count of 9.
        var payload = ByteBuffer()
        payload.writeInteger(UInt32(0))
        payload.writeInteger(UInt8(0x80))
        payload.writeInteger(UInt64(1))
        payload.writeInteger(UInt8(9))
        #expect(throws: WireError.self) { try WireRequest.decode(payload) }
    }
}

/// A thread-safe counter for span ids.
private final class SpanIDCounter: Sendable {
    private let value = NIOLockedValueBox(0)
    func next() -> Int {
        value.withLockedValue {
            $0 += 1; return $0
        }
    }
}
