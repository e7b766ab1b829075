import NIOCore

/// One ``Client`` per event loop of a group, made on first use: a caller on one of the group's loops
/// gets the client whose connections live on that same loop, so its calls and their answers never
/// change threads. Callers on other threads get nil (and use a shared client).
struct LoopLinks: Sendable {
    private let loops: Set<ObjectIdentifier>
    private let configuration: ClientConfiguration
    private var byLoop: [ObjectIdentifier: Client] = [:]

    init(group: EventLoopGroup, configuration: ClientConfiguration) {
        loops = Set(group.makeIterator().map { ObjectIdentifier($0) })
        self.configuration = configuration
    }

    /// Every client made so far.
    var clients: [Client] { Array(byLoop.values) }

    /// The client of `loop`, when it is one of the group's loops.
    mutating func client(to node: NodeAddress, on loop: EventLoop?) -> Client? {
        guard let loop, loops.contains(ObjectIdentifier(loop)) else { return nil }
        if let client = byLoop[ObjectIdentifier(loop)] { return client }
        let client = Client(nodes: [node], configuration: configuration, group: loop)
        byLoop[ObjectIdentifier(loop)] = client
        return client
    }
}
