import DistriCore
import Foundation
import NIOCore
import NIOFoundationCompat

/// The built-in services the node registers on itself.
extension BuiltinServices {
    /// Services only nodes use among themselves; not advertised as offered services.
    public static let internalNames: Set<String> = [
        MembershipShell.gossipService, stats, locate, taskStatus, DatabaseReplica.replicateService, members,
    ]

    static func register(on node: CloudNode) {
        node.services.register(
            RegisteredService(
                name: stats,
                execution: .inline { [weak node] _ in
                    guard let node else { throw ServiceError(.shuttingDown, "node is gone") }
                    return ByteBuffer(data: try JSONEncoder().encode(node.stats()))
                },
                bypassesAdmission: true))
        node.services.register(
            RegisteredService(
                name: members,
                execution: .inline { [weak node] _ in
                    guard let node else { throw ServiceError(.shuttingDown, "node is gone") }
                    return ByteBuffer(data: try JSONEncoder().encode(node.memberSummaries()))
                },
                bypassesAdmission: true))
        node.services.register(
            RegisteredService(name: echo, execution: .inline { request in request.data }))
    }
}
