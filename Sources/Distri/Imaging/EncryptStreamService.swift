import DistriCore
import DistriImaging
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// `Encrypt` for files too large for one message, streamed through one node in bounded memory:
///
/// - `EncryptOpen` (parameters `size=N`, the envelope's bytes, and `density=2|4|8`): elected by load
///   like any task; the node that runs it opens a session and answers
///   `{"session", "node", "key", "width", "height", "bitsPerChannel"}`: the key goes to the caller
///   only, and every chunk goes to that node (`node`, with routing `local`).
/// - `EncryptChunk` (parameters `session=ID`, `offset=O`; body: the next bytes of the envelope, at
///   most ``Limits/maxChunkBytes``, in order): sealed 64 KiB at a time (`SealedStreamWriter`), hidden
///   in cover rows as they are generated and encoded (`StreamEmbedder`); answers the cover PNG's
///   bytes produced so far. The chunk that completes the envelope also ends the PNG and closes the
///   session.
///
/// A session holds one cover row, less than a row of payload, one sealed chunk and libpng's state,
/// whatever the file's size. At most ``Limits/maxSessions`` are open on a node (another is `busy`), a
/// session idle for ``Limits/idleTimeout`` is closed, and the first chunk must hold the envelope's
/// header; an image's frame header there is checked against the content limits. The node keeps
/// nothing after a session ends.
public enum EncryptStreamService {
    /// The service that opens a session on the elected node, `EncryptOpen`.
    public static let open = "EncryptOpen"
    /// The service that sends the next chunk of a session, `EncryptChunk`.
    public static let chunk = "EncryptChunk"

    /// Bounds of the streamed Encrypt.
    public struct Limits: Sendable {
        /// Largest envelope. Default 1 GiB.
        public var maxBytes: Int
        /// Largest body of one `EncryptChunk`. Default 4 MiB.
        public var maxChunkBytes: Int
        /// Sessions open at once on a node. Default 4.
        public var maxSessions: Int
        /// A session without a chunk for this long is closed. Default 30 s.
        public var idleTimeout: Duration
        /// Dimension and pixel limits of an image that is sealed (its header, never its pixels).
        public var content: PNGLimits

        /// Limits with the given values; every argument has a default.
        public init(
            maxBytes: Int = 1 << 30, maxChunkBytes: Int = 4 << 20, maxSessions: Int = 4,
            idleTimeout: Duration = .seconds(30), content: PNGLimits = .default
        ) {
            self.maxBytes = maxBytes
            self.maxChunkBytes = maxChunkBytes
            self.maxSessions = maxSessions
            self.idleTimeout = idleTimeout
            self.content = content
        }
    }

    /// Registers both services; `myself` gives the address clients reach this node at.
    static func register(
        on registry: ServiceRegistry, limits: Limits = Limits(), myself: @escaping @Sendable () -> NodeAddress?
    ) {
        let sessions = EncryptSessions(limits: limits)
        registry.register(
            RegisteredService(
                name: open,
                execution: .inline { request in
                    guard let node = myself() else { throw ServiceError(.unavailable, "the node is not listening yet") }
                    return ByteBuffer(string: try sessions.open(request, node: node))
                },
                remembersResult: false))
        registry.register(
            RegisteredService(
                name: chunk, execution: .async { request in ByteBuffer(bytes: try sessions.chunk(request)) },
                runsWhereAsked: true, remembersResult: false))
    }
}

/// The open sessions of one node's streamed Encrypt.
final class EncryptSessions: Sendable {
    /// One streamed Encrypt: its sealer, its cover and how far it got.
    final class Session {
        let size: Int
        var received = 0
        var sealer: SealedStreamWriter
        let embedder: StreamEmbedder
        var lastUsed: ContinuousClock.Instant

        init(size: Int, sealer: SealedStreamWriter, embedder: StreamEmbedder) {
            self.size = size
            self.sealer = sealer
            self.embedder = embedder
            lastUsed = .now
        }
    }

    /// A session held by the one call using it. Safe to send: a session is in the table (where no
    /// call touches its state) or taken out of it by exactly one call, which puts it back or drops it
    /// when done; the table's lock orders the two.
    struct Held: @unchecked Sendable {
        let session: Session
    }

    private struct Table {
        /// Sessions waiting for their next chunk.
        var idle: [String: Held] = [:]
        /// Sessions a call is working on.
        var busy: Set<String> = []
    }

    let limits: EncryptStreamService.Limits
    private let table = NodeLock(Table())

    init(limits: EncryptStreamService.Limits) {
        self.limits = limits
    }

    /// Opens a session; answers the session's id, the node, the key and the cover's size as JSON.
    func open(_ request: ServiceRequest, node: NodeAddress) throws -> String {
        guard let size = request.intParam("size"), size >= 0 else {
            throw ServiceError.badParams("size=N must give the envelope's length in bytes")
        }
        guard size <= limits.maxBytes else {
            throw ServiceError(.tooLarge, "\(size) bytes; a streamed Encrypt seals at most \(limits.maxBytes)")
        }
        let bits = try EncryptService.density(request)
        let key = try ImageKey.generate()
        var random = SystemImagingRandom()
        let sealer = try SealedStreamWriter(fileKey: key.fileKey, length: size, random: &random)
        let seed = try random.bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let embedder = try StreamEmbedder(
            length: SealedStream.sealedSize(plaintextCount: size), key: key, seed: seed, bitsPerChannel: bits)
        let id = Hex.encode(try random.bytes(16))
        let session = Session(size: size, sealer: sealer, embedder: embedder)
        let now = ContinuousClock.now
        try table.withLockedValue { table in
            table.idle = table.idle.filter { now - $0.value.session.lastUsed < limits.idleTimeout }
            guard table.idle.count + table.busy.count < limits.maxSessions else {
                throw ServiceError(
                    .busy, "\(limits.maxSessions) streamed encryptions are running on this node; try again later")
            }
            table.idle[id] = Held(session: session)
        }
        let reply: [String: Any] = [
            "session": id, "node": node.description, "key": key.text, "width": embedder.width,
            "height": embedder.height, "bitsPerChannel": bits,
        ]
        let data = try JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Seals and embeds the next chunk; answers the PNG bytes produced.
    func chunk(_ request: ServiceRequest) throws -> [UInt8] {
        guard let id = request.stringParam("session"), let offset = request.intParam("offset") else {
            throw ServiceError.badParams("session=ID and offset=N are required")
        }
        let bytes = request.bytes
        guard bytes.count <= limits.maxChunkBytes else {
            throw ServiceError(.tooLarge, "a chunk of \(bytes.count) bytes; at most \(limits.maxChunkBytes)")
        }
        let held = try table.withLockedValue { table -> Held in
            guard let held = table.idle.removeValue(forKey: id) else {
                throw table.busy.contains(id)
                    ? ServiceError.conflict("session \(id) is taking another chunk")
                    : ServiceError.notFound("no streamed encryption \(id) on this node (ended, or idle too long)")
            }
            table.busy.insert(id)
            return held
        }
        var keep = false
        defer {
            table.withLockedValue { table in
                table.busy.remove(id)
                if keep { table.idle[id] = held }
            }
        }
        let session = held.session
        guard offset == session.received else {
            keep = true
            throw ServiceError.conflict("offset \(offset), but the session has \(session.received) bytes")
        }
        guard bytes.count <= session.size - session.received, !bytes.isEmpty || session.size == 0 else {
            throw ServiceError.badParams("the chunk runs past the \(session.size) bytes declared")
        }
        if offset == 0 { try check(header: bytes, size: session.size) }
        var png: [UInt8]
        do {
            png = try session.embedder.append(try session.sealer.append(bytes))
            session.received += bytes.count
            if session.received == session.size { png += try session.embedder.finish() }
        } catch let error as ImagingError {
            throw ServiceError(.internal, "sealing failed: \(error)")
        }
        session.lastUsed = .now
        keep = session.received < session.size
        return png
    }

    /// The first chunk: an envelope whose header it holds whole; for an image, a frame header within
    /// the content limits.
    private func check(header first: [UInt8], size: Int) throws {
        let header: (kind: SealedContent.Kind, name: String, mediaType: String, start: Int)?
        do {
            header = try SealedContent.header(of: first)
        } catch {
            throw ServiceError.badParams("the first chunk must start with the whole envelope header: \(error)")
        }
        guard let header else { throw ServiceError.badParams("a streamed Encrypt takes an envelope (DENV)") }
        let content = Array(first[header.start...])
        let size: (width: Int, height: Int)?
        switch header.kind {
        case .png: size = PNGStructure.declaredSize(content)
        case .jpeg: size = JPEGStructure.declaredSize(content)
        case .file: return
        }
        guard let size else {
            throw ServiceError.badParams("the image's header must be in the first chunk")
        }
        let limits = limits.content
        guard size.width <= limits.maxWidth, size.height <= limits.maxHeight,
            size.width * size.height <= limits.maxPixels
        else {
            throw ServiceError(
                .tooLarge, "the image is \(size.width)x\(size.height) pixels; the limit is \(limits.maxPixels) pixels")
        }
    }
}
