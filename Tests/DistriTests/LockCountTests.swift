import DistriClient
import DistriTestSupport
import NIOCore
import Testing

@testable import Distri

/// Counts the locks a forwarded small call takes on its entry node (debug builds count every
/// ``NodeLock`` acquisition). Before the task router, the entry node took 13 (the cluster box, the
/// dark check, the registry, the runtime three times, membership candidates, election, address,
/// forward start and end, the down-watch and its removal, and the settle flag twice); the router
/// takes one lock per event: arrival and the forward's end, plus the registry look-up.
@Suite struct LockCountTests {
    @Test("a forwarded small call takes at most 4 locks on the entry node")
    func forwardedCall() async throws {
        #if DEBUG
            try await withCloud(
                nodes: 2, clustered: true, insecure: true,
                // A one-slot entry node always finds the 64-slot node less loaded: every call is forwarded.
                configure: { $0.capacity = $0.seeds.isEmpty ? 1 : 64 },
                setUp: { node in
                    node.services.register(RegisteredService(name: "Echo", execution: .inline { $0.data }))
                }
            ) { nodes, addresses in
                let client = Client(nodes: [addresses[0]])
                let calls = 300
                func locks(through node: NodeAddress, routing: Routing) async throws -> Double {
                    var fewest = Int.max
                    // The fewest of three rounds: the membership tickers take locks of their own meanwhile.
                    for _ in 0..<3 {
                        let before = LockAcquisitions.count
                        for _ in 0..<calls {
                            _ = try await client.call(
                                ByteBuffer(bytes: [1, 2, 3]), service: "Echo", node: node, routing: routing
                            ).get()
                        }
                        fewest = min(fewest, LockAcquisitions.count - before)
                    }
                    return Double(fewest) / Double(calls)
                }
                let forwardedBefore = nodes[0].stats().cluster.tasksForwarded
                let forwarded = try await locks(through: addresses[0], routing: .elect)
                #expect(nodes[0].stats().cluster.tasksForwarded - forwardedBefore == UInt64(3 * calls))
                let direct = try await locks(through: addresses[1], routing: .local)
                let entry = forwarded - direct
                print("locks per call: forwarded \(forwarded), direct to the executor \(direct), entry node \(entry)")
                #expect(entry <= 4, "the entry node took \(entry) locks per forwarded call")
                await client.shutdown()
            }
        #else
            // Release builds do not count.
        #endif
    }
}
