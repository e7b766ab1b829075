import Distri
import DistriPeer
import DistriTestSupport
import Foundation
import Testing

/// Starts `count` real clustered nodes on OS-chosen loopback ports (each configured by `configure`
/// last), runs `body`, shuts them down.
func withPeerCloud<T>(
    nodes count: Int = 1, depositKey: [UInt8]? = nil, configure: (inout CloudNodeConfiguration) -> Void = { _ in },
    _ body: ([CloudNode], [NodeAddress]) async throws -> T
) async throws -> T {
    var nodes: [CloudNode] = []
    var addresses: [NodeAddress] = []
    for _ in 0..<count {
        var configuration = CloudNodeConfiguration()
        configuration.seeds = Array(addresses.prefix(1))
        configuration.depositKey = depositKey
        configuration.cluster.swim.probeInterval = 500
        configuration.cluster.swim.probeTimeout = 300
        configuration.tls = try TestTLS.authority.nodeTLS(name: configuration.nodeID)
        configure(&configuration)
        let node = CloudNode(configuration: configuration)
        addresses.append(try await node.start())
        nodes.append(node)
    }
    let ids = Set(nodes.map(\.id))
    let converged = await eventually(timeout: .seconds(30)) {
        nodes.allSatisfy { node in Set(node.stats().members.filter { $0.status == "alive" }.map(\.id)) == ids }
    }
    #expect(converged, "the test cluster did not converge")
    do {
        let result = try await body(nodes, addresses)
        for node in nodes { await node.shutdown() }
        return result
    } catch {
        for node in nodes { await node.shutdown() }
        throw error
    }
}

/// Runs `body` with a client of `addresses` (cloud nodes over TLS, or peer daemons in plain TCP
/// when `peer`), shutting it down afterwards.
func withClient<T>(_ addresses: [NodeAddress], peer: Bool = false, _ body: (Client) async throws -> T) async throws
    -> T
{
    let client = Client(nodes: addresses, configuration: peer ? ClientConfiguration() : .tls)
    do {
        let result = try await body(client)
        await client.shutdown()
        return result
    } catch {
        await client.shutdown()
        throw error
    }
}

/// A fresh temporary directory, removed after `body`.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("distri-peer-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// A PNG from sample-images/.
func samplePNG(_ name: String) throws -> [UInt8] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "../../sample-images/\(name)")
    return Array(try Data(contentsOf: url))
}
