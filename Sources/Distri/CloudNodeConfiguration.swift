import DistriCore
import DistriWire
import NIOCore
import Tracing

/// How a ``CloudNode`` listens and how much work it takes on. Every field has a safe default.
public struct CloudNodeConfiguration: Sendable {
    /// Address to bind; port 0 lets the OS choose. Default `127.0.0.1:0`.
    public var listen: NodeAddress
    /// Address other nodes and clients should use, when it differs from the bound one (NAT, containers).
    /// Default: the bound address.
    public var advertise: NodeAddress?
    /// Addresses of existing nodes to join through. Default none (a cloud of one).
    public var seeds: [NodeAddress]
    /// Stable id of the node; default a random one.
    public var nodeID: String
    /// Tasks running at once. Default 64.
    public var capacity = 64
    /// Tasks waiting for a slot before the node answers busy. Default 4096.
    public var queueLimit = 4096
    /// Frame and message size limits. Default `WireLimits.standard` (64 MiB messages).
    public var limits = WireLimits.standard
    /// How long a graceful shutdown waits for work in flight. Default 30 s.
    public var drainTimeout = TimeAmount.seconds(30)
    /// Membership, election, deduplication and chaos settings.
    public var cluster = ClusterSettings()
    /// Document DB limits and replication timing.
    public var database = DatabaseLimits()
    /// Where the node keeps its DB replica's write-ahead log; nil keeps it in memory only (it refills
    /// from the other nodes after a restart). Default nil.
    public var dataDirectory: String?
    /// Where to serve `GET /metrics` in the Prometheus text format (plain HTTP; port 0: the OS
    /// chooses); nil serves no metrics. Default nil.
    public var metricsListen: NodeAddress?
    /// Where the node's spans go (swift-distributed-tracing): a `distri.request` span for each
    /// request that joins the caller's trace when the request carries its context, with the
    /// election as an event, `distri.forward` and `distri.execute` under it, and the DB's writes,
    /// replication pushes and compare-and-set rounds. nil (the default): the process's tracer when
    /// `InstrumentationSystem.bootstrap` installed one (swift-otel's, say), else none, and then
    /// nothing is done per request.
    public var tracer: (any Tracer)?
    /// Per-source connection limits and timeouts for slow and idle connections.
    public var connections = ConnectionLimits()
    /// The node-wide ceilings: buffered bytes across all connections, parameter sizes, image pixels
    /// (one image, and all Encrypt calls at once), the TLS handshake deadline. See `ResourceLimits`.
    public var resources = ResourceLimits()
    /// The cloud's deposit key: the raw 32-byte X25519 private key that image keys deposited for view
    /// grants are sealed to (`CloudKey`, `GrantView`, `ConsumeView`). Every node of a cloud must hold
    /// the same one; nil makes a fresh key at start, which only suits a one-node cloud. Keep it secret.
    public var depositKey: [UInt8]?
    /// TLS: the cluster's authority and this node's certificate. The node's id is then the
    /// certificate's name, whatever ``nodeID`` says (``CloudNode`` applies it).
    /// Node links are mutual TLS; only connections showing a node certificate of the same authority
    /// may call internal services (gossip, replication, task status). nil is plain TCP (`--insecure`).
    public var tls: ClusterTLS?
    /// Per-peer quotas on the traffic this node relays between peers (``RelayServices``): bytes per
    /// sender per hour and chunks in flight per sender and per recipient. See
    /// `RelayQuotas.Limits`.
    public var relayQuotas = RelayQuotas.Limits()
    /// The mailbox for offline recipients: quotas, expiry, chunk size, sweep (``MailboxServices``).
    /// Every node of a cloud should hold the same. Default ``MailboxLimits/init()``.
    public var mailbox = MailboxLimits()
    /// The streamed Encrypt for files above what one call seals: the largest file, chunk, sessions
    /// at once and idle time (``EncryptStreamService``). Default 1 GiB, 4 MiB, 4, 30 s.
    public var encryptStream = EncryptStreamService.Limits()

    /// A node at `listen` (default `127.0.0.1:0`) that joins through `seeds`, named `nodeID` (default a
    /// random one) and speaking `tls` (default plain TCP); every other field starts at its default.
    public init(
        listen: NodeAddress = NodeAddress(host: "127.0.0.1", port: 0), advertise: NodeAddress? = nil,
        seeds: [NodeAddress] = [], nodeID: String? = nil, tls: ClusterTLS? = nil
    ) {
        self.listen = listen
        self.advertise = advertise
        self.seeds = seeds
        self.nodeID = nodeID ?? NodeID.random()
        self.tls = tls
    }
}

/// Node ids: short random hex strings.
public enum NodeID {
    /// A fresh random node id, from the system generator.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// A random node id drawn from `generator` (seeded in tests, for repeatable ids).
    public static func random(using generator: inout some RandomNumberGenerator) -> String {
        let value = generator.next() as UInt64
        return "n" + withUnsafeBytes(of: value.bigEndian) { Hex.encode(Array($0)) }
    }
}

extension CloudNode {
    /// The tracer `InstrumentationSystem.bootstrap` installed, if any (the default is a no-op
    /// tracer, which a node does not use: it would only cost time).
    static var processTracer: (any Tracer)? {
        let tracer = InstrumentationSystem.tracer
        return tracer is NoOpTracer ? nil : tracer
    }
}
