import DistriClient
import DistriCore
import DistriWire
import NIOCore

/// `RelayAttach`: the request that turns a peer's connection to a node into its relay link.
package enum RelayAttachService {
    package static let name = "RelayAttach"
}

/// A node's relay links, as its connections need them: a `RelayAttach` request is checked, then the
/// connection is recorded as that peer's link (the node's calls to the peer go out through
/// `handler`).
package protocol RelayAttaching: Sendable {
    /// The node's id, given back to the peer.
    var nodeID: String { get }
    /// Checks the request's proof; succeeds with the peer's name.
    func verifyAttach(_ request: WireRequest, on loop: EventLoop) -> EventLoopFuture<String>
    /// Records `channel` as the link of `peer`.
    func attach(_ peer: String, channel: Channel, handler: NIOLoopBound<ClientHandler>) throws(ServiceError)
}
