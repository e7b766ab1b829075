// The cost of one small call, client and server in one process on one event loop thread: a
// `Client` calls `Echo` on a `PeerEndpoint` (the server side every node shares: framing, the
// dispatcher, the task router, one lock per event) over loopback, `concurrency` in flight on one
// connection. Both ends share the thread, so 1 / (calls per second) is the CPU time of a call, client
// and server together: `swift build -c release --product call-cost && .build/release/call-cost 200000 16`.
// For instruction counts, run it under `valgrind --tool=callgrind` with two call counts and divide the
// difference (start-up cancels out); valgrind 3.19 on this machine stops at start-up on any binary
// linking the networking stack (it runs plain Swift and Foundation programs), so that waits for another
// valgrind.
import DistriClient
import DistriServer
import Foundation
import NIOCore
import NIOPosix

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let calls = arguments.first ?? 20_000
let concurrency = arguments.dropFirst().first ?? 16

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let endpoint = PeerEndpoint(group: group)
endpoint.services.register(RegisteredService(name: "Echo", execution: .inline { $0.data }))
let address = try await endpoint.start(host: "127.0.0.1", port: 0)
let client = Client(
    nodes: [address], configuration: ClientConfiguration(membershipRefresh: nil, attemptTimeout: nil), group: group)
let payload = ByteBuffer(repeating: 0x61, count: 64)

/// Runs `total` calls, `concurrency` at a time, on the client's event loop; fails on the first error.
func run(_ total: Int) async throws {
    let loop = client.eventLoop
    let done = loop.makePromise(of: Void.self)
    loop.execute {
        var started = 0
        var finished = 0
        func next() {
            guard started < total else { return }
            started += 1
            client.call(payload, service: "Echo", node: address, routing: .local).assumeIsolated().whenComplete {
                result in
                if case .failure(let error) = result { return done.fail(error) }
                finished += 1
                if finished == total { done.succeed(()) } else { next() }
            }
        }
        for _ in 0..<min(concurrency, total) { next() }
    }
    try await done.futureResult.get()
}

try await run(200)
let clock = ContinuousClock()
let elapsed = try await clock.measure { try await run(calls) }
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print("\(calls) calls, \(concurrency) in flight: \(Int(Double(calls) / seconds)) calls/s")
await client.shutdown()
await endpoint.shutdown()
try await group.shutdownGracefully()
