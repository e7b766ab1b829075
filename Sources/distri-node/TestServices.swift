import Distri
import NIOCore

/// Services for load and fault tests, served with `distri-node run --test-services`.
enum TestServices {
    static func register(on node: CloudNode) {
        // Spin MICROS: burns CPU for about that long, returns the node id.
        node.register("Spin") { request in
            let micros = Int(try request.param(0, "microseconds")) ?? 1000
            let end = NIODeadline.now() + .microseconds(Int64(min(micros, 10_000_000)))
            var x: UInt64 = 0
            while NIODeadline.now() < end { x = x &* 6_364_136_223_846_793_005 &+ 1 }
            return Array("\(node.id) \(x % 10)".utf8)
        }
        // Sleep MILLIS: waits that long, returns the node id.
        node.register("Sleep") { request in
            let millis = Int(try request.param(0, "milliseconds")) ?? 10
            try await Task.sleep(for: .milliseconds(min(millis, 60_000)))
            return Array(node.id.utf8)
        }
        // GoDark MILLIS: the node drops all traffic for that long, as if cut off.
        node.register("GoDark") { request in
            let millis = Int(try request.param(0, "milliseconds")) ?? 1000
            node.goDark(for: .milliseconds(Int64(millis)))
            return []
        }
    }
}
