import Distri
import DistriIdentity
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// `distri-peer serve`: listens for other peers (`PeerEndpoint`, answering `Ping` with the peer's
/// name) and keeps the peer's signed record in the cloud's `users` collection fresh, re-registering
/// every refresh interval with a new `lastSeen`. It takes images other peers send (`Deliver`, see
/// ``PeerSharing``) and retries this peer's queued sends (the outbox) every refresh. A swift-service-lifecycle `Service`: it runs until
/// graceful shutdown or cancellation.
public final class PeerDaemon: Service, Sendable {
    /// The default refresh interval, in milliseconds.
    public static let defaultRefreshMillis: UInt64 = 5000
    /// The service other peers and the cloud call to check the daemon is there; it answers the peer's name.
    public static let pingService = "Ping"

    /// Where the daemon listens and how it keeps in touch with the cloud.
    public struct Configuration: Sendable {
        /// The host to listen on.
        public var host: String
        /// The port to listen on; 0 lets the system choose.
        public var port: Int
        /// Addresses to publish instead of the bound one (e.g. behind NAT); empty: the bound address.
        public var advertise: [String]
        /// How often the daemon refreshes its record, collects its mailbox and retries its outbox, in milliseconds.
        public var refreshMillis: UInt64
        /// Whether ``PeerDaemon/run()`` keeps a relay link to the cloud, so peers that cannot dial this
        /// one deliver through the cloud. Default true.
        public var keepsRelayLink: Bool
        /// Whether ``PeerDaemon/start()`` asks the cloud to dial the advertised addresses
        /// (`CheckReachable`) and publishes the answer in the record. Default true.
        public var checksReachability: Bool
        /// Puts an error in words for the log (the tools map transport and TLS errors to sentences).
        public var describeError: @Sendable (any Error) -> String

        /// A configuration with the given values; every argument has a default.
        public init(
            host: String = "127.0.0.1", port: Int = 0, advertise: [String] = [], refreshMillis: UInt64 = 5000,
            keepsRelayLink: Bool = true, checksReachability: Bool = true,
            describeError: @escaping @Sendable (any Error) -> String = { "\($0)" }
        ) {
            self.describeError = describeError
            self.host = host
            self.port = port
            self.advertise = advertise
            self.refreshMillis = refreshMillis
            self.keepsRelayLink = keepsRelayLink
            self.checksReachability = checksReachability
        }
    }

    /// How often the daemon checks its relay link is alive.
    public var relayHeartbeat: Duration { .seconds(5) }
    /// Refreshes between two reachability checks (about a minute at the default refresh).
    static let refreshesPerReachabilityCheck = 12

    /// The peer the daemon serves.
    public let identity: PeerIdentity
    /// The cloud it keeps in touch with.
    public let cloud: PeerCloud
    /// Its configuration.
    public let configuration: Configuration
    /// The endpoint other peers deliver to.
    public let endpoint: PeerEndpoint
    let logger: Logger
    /// Failures of the repeated work, logged once while they repeat.
    let warnings: RepeatingWarnings
    private let onListening: @Sendable (NodeAddress) -> Void
    private let state = NIOLockedValueBox(State())

    private struct State {
        var address: NodeAddress?
        var advertised: [String] = []
        var sequence: UInt64 = 0
        var registrations = 0
        var reachable: Bool?
        var relayNode: NodeAddress?
    }

    /// The daemon's sharing: its `Deliver`, outbox retries and mailbox collection.
    let sharing: PeerSharing

    /// `onListening` is called once the listener is bound and the first registration succeeded;
    /// `onReceive` for every image that arrives (each is also logged at `notice`).
    public init(
        identity: PeerIdentity, cloud: PeerCloud, configuration: Configuration = .init(),
        logger: Logger = Logger(label: "distri.peer"),
        onListening: @escaping @Sendable (NodeAddress) -> Void = { _ in },
        onReceive: (@Sendable (ReceivedImage) -> Void)? = nil
    ) {
        var sharing = PeerSharing(identity: identity, cloud: cloud)
        sharing.onReceive = { image in
            logger.notice(
                "image received",
                metadata: ["from": "\(image.owner)", "image": "\(image.image)", "bytes": "\(image.bytes)"])
            onReceive?(image)
        }
        self.sharing = sharing
        self.identity = identity
        self.cloud = cloud
        self.configuration = configuration
        self.logger = logger
        self.warnings = RepeatingWarnings(logger: logger, describe: configuration.describeError)
        self.onListening = onListening
        self.endpoint = PeerEndpoint(logger: logger)
        let name = identity.name
        endpoint.services.register(
            RegisteredService(name: Self.pingService, execution: .inline { _ in ByteBuffer(string: name) }))
        sharing.registerDeliver(on: endpoint)
    }

    /// The bound address, once listening.
    public var address: NodeAddress? { state.withLockedValue { $0.address } }
    /// Successful registrations so far.
    public var registrations: Int { state.withLockedValue { $0.registrations } }
    /// What the cloud's reachability check said of the advertised addresses (nil: not checked, or the
    /// check failed).
    public var reachable: Bool? { state.withLockedValue { $0.reachable } }
    /// The node the daemon's relay link is attached to now.
    public var relayNode: NodeAddress? { state.withLockedValue { $0.relayNode } }

    func setRelayNode(_ node: NodeAddress?) {
        state.withLockedValue { $0.relayNode = node }
    }

    /// The addresses published in the peer's record, once started: ``Configuration/advertise``, else
    /// the bound address; a wildcard one (`0.0.0.0`) is replaced by the local address of the route
    /// to the cloud (see `AdvertisedAddress`).
    public var advertised: [String] { state.withLockedValue { $0.advertised } }

    /// Binds the listener and registers once; throws when either fails (a name bound to another key
    /// fails here, with the cloud's reason).
    @discardableResult
    public func start() async throws -> NodeAddress {
        let address = try await endpoint.start(host: configuration.host, port: configuration.port)
        var advertised = configuration.advertise
        if advertised.isEmpty {
            let (resolved, source) = await AdvertisedAddress.resolve(
                configured: nil, bound: address, seeds: cloud.client.nodes)
            if source != .listen {
                logger.notice(
                    "listening on a wildcard address; advertising \(resolved), \(source.rawValue) (set --advertise to choose)"
                )
            }
            advertised = [resolved.description]
        }
        state.withLockedValue {
            $0.address = address
            $0.advertised = advertised
        }
        if configuration.checksReachability { await recheckReachability() }
        do {
            try await refresh()
        } catch {
            await endpoint.shutdown()
            throw PeerError("registering '\(identity.name)' with the cloud failed: \(error)")
        }
        onListening(address)
        return address
    }

    /// Signs a fresh record (lastSeen now) and registers it. When the cloud holds a higher sequence
    /// (this machine's clock went back), continues after it, once.
    public func refresh() async throws {
        do {
            try await registerOnce()
        } catch let error as ClientError where error.remoteCode == .conflict {
            let stored = try await cloud.database.read(
                PeerRecord.collection, filter: ["_id": .string(identity.name)], limit: 1)
            guard let document = stored.documents.first,
                let record = try? PeerRecord(document: document.body), record.signingKey == identity.signing.publicKey
            else { throw error }
            state.withLockedValue { $0.sequence = max($0.sequence, record.sequence) }
            try await registerOnce()
        }
    }

    /// Runs the reachability check on the advertised addresses and keeps its answer for the record.
    public func recheckReachability() async {
        let addresses = state.withLockedValue { $0.advertised }
        let reachable = await checkReachability(addresses)
        state.withLockedValue { $0.reachable = reachable }
    }

    private func registerOnce() async throws {
        let (addresses, previous, reachable) = state.withLockedValue { ($0.advertised, $0.sequence, $0.reachable) }
        let record = try identity.signedRecord(
            addresses: addresses, now: wallClockMillis(), after: previous, reachable: reachable)
        state.withLockedValue { $0.sequence = max($0.sequence, record.sequence) }
        try await cloud.register(record)
        state.withLockedValue { $0.registrations += 1 }
    }

    /// Tries the outbox's queued sends once (see ``PeerSharing/deliverOutbox(progress:)``); failures are logged.
    public func deliverOutbox() async {
        do {
            let (delivered, waiting) = try await sharing.deliverOutbox()
            if delivered > 0 {
                logger.notice(
                    "delivered queued sends", metadata: ["delivered": "\(delivered)", "waiting": "\(waiting)"])
            }
            warnings.succeeded("delivering the outbox")
        } catch {
            warnings.failed("delivering the outbox", error)
        }
    }

    /// Refreshes the record and retries the outbox every interval, and checks reachability again
    /// every ``refreshesPerReachabilityCheck`` refreshes, until cancelled.
    private func refreshUntilCancelled() async {
        let interval = Duration.milliseconds(Int64(configuration.refreshMillis))
        var passes = 0
        // Bounded in time by the service's life: each pass sleeps one interval, and shutdown cancels the sleep.
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                break
            }
            passes += 1
            if configuration.checksReachability, passes % Self.refreshesPerReachabilityCheck == 0 {
                await recheckReachability()
            }
            do {
                try await refresh()
                warnings.succeeded("refreshing the peer record")
            } catch {
                warnings.failed("refreshing the peer record", error)
            }
            await deliverOutbox()
            await collectMailbox()
        }
    }

    /// Collects what waits in this peer's mailbox (see ``PeerSharing/collectMailbox()``); logs what it
    /// collected and what failed.
    public func collectMailbox() async {
        do {
            let (collected, failed) = try await sharing.collectMailbox()
            if collected > 0 { logger.notice("collected from the mailbox", metadata: ["images": "\(collected)"]) }
            for failure in failed { warnings.failed("collecting from the mailbox", failure) }
            if failed.isEmpty { warnings.succeeded("collecting from the mailbox") }
            warnings.succeeded("listing the mailbox")
        } catch {
            warnings.failed("listing the mailbox", error)
        }
    }

    /// Starts (when not started), then refreshes every interval until graceful shutdown or
    /// cancellation; a failed refresh is logged and tried again at the next interval.
    public func run() async throws {
        if address == nil { try await start() }
        await collectMailbox()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if self.configuration.keepsRelayLink { group.addTask { await self.keepRelayLink() } }
                group.addTask { await self.refreshUntilCancelled() }
                await group.waitForAll()
            }
        }
        await endpoint.shutdown()
    }
}
