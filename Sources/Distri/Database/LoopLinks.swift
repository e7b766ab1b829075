import NIOCore

/// One ``Client`` per event loop of a group, made on first use like a shared `template` client (its
/// nodes and configuration): a caller on one of the group's loops gets the client whose connections
/// live on that same loop, so its calls and their answers never change threads. Callers on other
/// threads get nil (and use the template).
struct LoopLinks: Sendable {
    private let loops: Set<ObjectIdentifier>
    private let template: Client
    private var byLoop: [ObjectIdentifier: Client] = [:]

    init(group: EventLoopGroup, template: Client) {
        loops = Set(group.makeIterator().map { ObjectIdentifier($0) })
        self.template = template
    }

    /// Every client made so far.
    var clients: [Client] { Array(byLoop.values) }

    /// The client of `loop`, when it is one of the group's loops.
    mutating func client(on loop: EventLoop?) -> Client? {
        guard let loop, loops.contains(ObjectIdentifier(loop)) else { return nil }
        if let client = byLoop[ObjectIdentifier(loop)] { return client }
        let client = Client(nodes: template.nodes, configuration: template.configuration, group: loop)
        byLoop[ObjectIdentifier(loop)] = client
        return client
    }
}
