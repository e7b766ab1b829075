import Testing

@testable import DistriCore

/// A hand-driven network of ``ReplicaEngine``s for focused tests: requests and answers wait in queues
/// until the test delivers or drops them, and the test sets the clock.
struct ReplicaTestNetwork {
    struct Request {
        var from: String
        var to: String
        var number: UInt64
        var request: ReplicaRequest
    }

    struct Answer {
        var from: String
        var to: String
        var number: UInt64
        var response: ReplicaResponse
    }

    var engines: [String: ReplicaEngine] = [:]
    var logs: [String: [PersistedEntry]] = [:]
    var requests: [Request] = []
    var answers: [Answer] = []
    var completed: [UInt64: Result<WriteReceipt, DatabaseError>] = [:]
    var readable: [UInt64: Result<Void, DatabaseError>] = [:]
    /// The reader's store at the moment each read became readable (what the read would return).
    var readStores: [UInt64: DocumentStore] = [:]
    /// Changes each node received in answers to its pulls.
    var pulledChanges: [String: Int] = [:]
    var now: UInt64 = 10_000
    /// When set, the encoded size of every delivered request and answer is added to `bytesDelivered`.
    var countsBytes = false
    var bytesDelivered = 0
    let settings: ReplicaSettings
    private var epochs: UInt64 = 100

    init(nodes: [String], settings: ReplicaSettings = .init()) {
        self.settings = settings
        for node in nodes { start(node) }
    }

    var nodes: [String] { engines.keys.sorted() }

    /// Starts `node` empty, or from its log when `fromLog`.
    mutating func start(_ node: String, fromLog: Bool = false) {
        epochs += 1
        var engine = ReplicaEngine(node: node, epoch: epochs, seed: epochs, settings: settings)
        if fromLog {
            engine.restore(logs[node] ?? [], now: now)
        } else {
            logs[node] = []
        }
        engines[node] = engine
    }

    /// Tells `node` which peers are alive (every node is known).
    mutating func setAlive(_ alive: Set<String>, at node: String) {
        let known = Set(nodes).subtracting([node])
        run(engines[node]!.setPeers(known: known, alive: alive, now: now), at: node)
    }

    /// Every node sees every other as alive.
    mutating func connectAll() {
        for node in nodes { setAlive(Set(nodes).subtracting([node]), at: node) }
    }

    mutating func run(_ actions: [ReplicaAction], at node: String) {
        for action in actions {
            switch action {
            case .persist(let entries): logs[node, default: []] += entries
            case .send(let peer, let number, let request):
                requests.append(Request(from: node, to: peer, number: number, request: request))
            case .completed(let operation, let result):
                #expect(completed[operation] == nil, "operation \(operation) completed twice")
                completed[operation] = result
            case .readable(let operation, let result):
                #expect(readable[operation] == nil, "read \(operation) answered twice")
                readable[operation] = result
                readStores[operation] = engines[node]!.store
            }
        }
    }

    /// Client writes on `node` in one event loop turn: a single flush pushes them as one batch.
    mutating func performBatch(_ operations: [DatabaseOperation], firstID: UInt64, at node: String) {
        for (offset, operation) in operations.enumerated() {
            run(
                engines[node]!.perform(
                    operation, consistency: .one, id: firstID + UInt64(offset), now: now, deadline: now + 1_000),
                at: node)
        }
        run(engines[node]!.flush(now: now), at: node)
    }

    /// A client's write on `node`, flushed at once.
    mutating func perform(
        _ operation: DatabaseOperation, _ consistency: WriteConsistency = .one, id: UInt64, at node: String,
        timeout: UInt64 = 1_000, idempotencyKey: UInt64 = 0
    ) {
        run(
            engines[node]!.perform(
                operation, consistency: consistency, id: id, now: now, deadline: now + timeout,
                idempotencyKey: idempotencyKey),
            at: node)
        run(engines[node]!.flush(now: now), at: node)
    }

    /// A client's read on `node`; the pulls it needs go out with the flush at the end of the turn.
    mutating func read(
        id: UInt64, _ consistency: ReadConsistency, session: SessionToken?, at node: String, timeout: UInt64 = 1_000
    ) {
        run(
            engines[node]!.prepareRead(
                id: id, consistency: consistency, session: session, now: now, deadline: now + timeout),
            at: node)
        run(engines[node]!.flush(now: now), at: node)
    }

    mutating func tick(_ node: String) {
        run(engines[node]!.tick(now: now), at: node)
    }

    /// Delivers the first queued request matching `filter` and queues its answer.
    @discardableResult
    mutating func deliverRequest(where filter: (Request) -> Bool = { _ in true }) -> Bool {
        guard let index = requests.firstIndex(where: filter) else { return false }
        let message = requests.remove(at: index)
        if countsBytes { bytesDelivered += ReplicaCodec.encode(message.request).count }
        let (response, actions) = engines[message.to]!.handle(message.request, from: message.from, now: now)
        run(actions, at: message.to)
        answers.append(Answer(from: message.to, to: message.from, number: message.number, response: response))
        return true
    }

    /// Delivers the first queued answer matching `filter`.
    @discardableResult
    mutating func deliverAnswer(where filter: (Answer) -> Bool = { _ in true }) -> Bool {
        guard let index = answers.firstIndex(where: filter) else { return false }
        let answer = answers.remove(at: index)
        if countsBytes { bytesDelivered += ReplicaCodec.encode(answer.response).count }
        if case .pulled(let reply) = answer.response { pulledChanges[answer.to, default: 0] += reply.changes.count }
        run(engines[answer.to]!.receive(answer.response, for: answer.number, now: now), at: answer.to)
        return true
    }

    /// Delivers requests and answers (in the order they were queued) until none is left.
    mutating func deliverAll() {
        for _ in 0..<100_000 {
            if deliverAnswer() { continue }
            if deliverRequest() { continue }
            return
        }
        Issue.record("messages kept coming")
    }

    /// Loses the queued requests matching `filter`: their senders time out.
    mutating func drop(where filter: (Request) -> Bool) {
        let lost = requests.filter(filter)
        requests.removeAll(where: filter)
        for message in lost { run(engines[message.from]!.requestFailed(message.number, now: now), at: message.from) }
    }

    /// `node` pulls from `peer` once, and the answer comes back.
    mutating func pull(_ node: String, from peer: String) {
        run([engines[node]!.pull(from: peer, reads: [])], at: node)
        while deliverRequest(where: { $0.from == node && $0.to == peer })
            || deliverAnswer(where: { $0.to == node && $0.from == peer })
        {}
    }

    /// Live documents of a collection on `node`, sorted by id.
    func documents(_ collection: String, on node: String) -> [String] {
        (engines[node]!.store.documents(in: collection) ?? []).map(\.id).sorted()
    }
}
