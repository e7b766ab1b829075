import DistriClient
import DistriTestSupport
import Foundation
import InMemoryTracing
import NIOConcurrencyHelpers
import NIOCore
import Testing
import Tracing
import W3CTraceContext

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

    @Test(
        "a majority write is a distri.db.write span whose pushes reach the replicas in the same trace; a conditional update's compare-and-set phases too"
    )
    func databaseWritesAreTraced() async throws {
        let tracers = ["a", "b", "c"].map(Self.tracer)
        let index = NIOLockedValueBox(0)
        try await withCloud(
            nodes: 3, clustered: true, insecure: true,
            configure: { configuration in
                configuration.tracer = index.withLockedValue { next in
                    defer { next += 1 }
                    return tracers[next]
                }
            }
        ) { _, addresses in
            try await Self.checkDatabaseSpans(addresses: addresses, tracers: tracers)
        }
    }

    /// Writes through the first of `addresses` with a traced client and checks the nodes' spans.
    private static func checkDatabaseSpans(addresses: [NodeAddress], tracers: [InMemoryTracer]) async throws {
        let clientTracer = Self.tracer("client")
        let client = Client(nodes: [addresses[0]], configuration: ClientConfiguration(tracer: clientTracer))
        let requests: [(service: String, params: [String], body: String)] = [
            ("CreateCollection", ["traced", "consistency=all"], ""),
            ("AddDocument", ["traced", "consistency=majority"], #"{"_id": "d", "n": 1}"#),
            ("UpdateDocument", ["traced", "d", #"if={"n": 1}"#], #"{"$inc": {"n": 1}}"#),
        ]
        for request in requests {
            _ = try await client.call(
                ByteBuffer(string: request.body), service: request.service, params: request.params,
                node: addresses[0], routing: .local
            ).get()
        }
        await client.shutdown()

        let calls = clientTracer.finishedSpans.filter { $0.operationName == "distri.call" }
        #expect(calls.count == 3)
        let add = try #require(calls.dropFirst().first)
        let writes = tracers[0].finishedSpans.filter { $0.traceID == add.traceID }
        let write = try #require(writes.first { $0.operationName == "distri.db.write" })
        let execution = try #require(writes.first { $0.operationName == "distri.execute" })
        #expect(write.parentSpanID == execution.spanID)
        let pushes = writes.filter { $0.operationName == "distri.db.push" && $0.parentSpanID == write.spanID }
        #expect(!pushes.isEmpty, "the write's pushes are its children")
        // A replica that received a push handled it in the same trace, under the push.
        let received = tracers.dropFirst().flatMap { $0.finishedSpans }.filter {
            $0.traceID == add.traceID && $0.operationName == "distri.request"
        }
        #expect(received.contains { request in pushes.contains { $0.spanID == request.parentSpanID } })

        let update = try #require(calls.last)
        let rounds = tracers[0].finishedSpans.filter {
            $0.traceID == update.traceID && $0.operationName.hasPrefix("distri.db.cas.")
        }
        #expect(
            Set(rounds.map { $0.operationName }).isSuperset(of: ["distri.db.cas.prepare", "distri.db.cas.propose"]))
    }

    @Test("the propagating tracer carries a caller's W3C traceparent through a forward to the executor's service")
    func propagationCarriesTraceparent() async throws {
        try await withCloud(
            nodes: 2, clustered: true, insecure: true,
            configure: { configuration in
                configuration.capacity = configuration.seeds.isEmpty ? 1 : 64
                configuration.tracer = PropagatingTracer()
            },
            setUp: { node in
                // Answers with the trace id and parent span id its execution sees.
                node.services.register(
                    RegisteredService(
                        name: "TraceID",
                        execution: .inline { request in
                            let trace = request.serviceContext?.w3cTraceContext
                            return ByteBuffer(
                                string: trace.map { "\($0.traceID) \($0.flags.contains(.sampled))" } ?? "none")
                        }))
            }
        ) { nodes, addresses in
            let client = Client(nodes: [addresses[0]], configuration: ClientConfiguration(tracer: PropagatingTracer()))
            var caller = ServiceContext.topLevel
            let traceID = "0af7651916cd43dd8448eb211c80319c"
            caller.w3cTraceContext = try TraceContext(
                traceParentHeaderValue: "00-\(traceID)-b7ad6b7169203331-01")
            let forwardedBefore = nodes[0].stats().cluster.tasksForwarded
            let reply = try await client.call(ByteBuffer(), service: "TraceID", node: addresses[0], context: caller)
                .get()
            #expect(String(buffer: reply) == "\(traceID) true")
            #expect(nodes[0].stats().cluster.tasksForwarded == forwardedBefore + 1)
            // Without a caller's context each request starts a trace of its own.
            let own = try await client.call(ByteBuffer(), service: "TraceID", node: addresses[1]).get()
            #expect(String(buffer: own).count == 32 + 6 && !String(buffer: own).hasPrefix(traceID))
            await client.shutdown()
            // A request that brings no trace stays untraced: the nodes make no ids for it.
            let untraced = Client(nodes: [addresses[1]])
            let none = try await untraced.call(ByteBuffer(), service: "TraceID", node: addresses[1]).get()
            #expect(String(buffer: none) == "none")
            await untraced.shutdown()
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
