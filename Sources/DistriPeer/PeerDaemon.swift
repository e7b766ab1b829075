import Distri
import DistriIdentity
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// `distri-peer serve`: listens for other peers (``PeerEndpoint``, answering `Ping` with the peer's
/// name) and keeps the peer's signed record in the cloud's `users` collection fresh, re-registering
/// every refresh interval with a new `lastSeen`. It takes images other peers send (`Deliver`, see
/// ``PeerSharing``) and retries this peer's queued sends (the outbox) every refresh. A swift-service-lifecycle `Service`: it runs until
/// graceful shutdown or cancellation.
public final class PeerDaemon: Service, Sendable {
    public static let defaultRefreshMillis: UInt64 = 5000
    public static let pingService = "Ping"

    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Addresses to publish instead of the bound one (e.g. behind NAT); empty: the bound address.
        public var advertise: [String]
        public var refreshMillis: UInt64

        public init(host: String = "127.0.0.1", port: Int = 0, advertise: [String] = [], refreshMillis: UInt64 = 5000) {
            self.host = host
            self.port = port
            self.advertise = advertise
            self.refreshMillis = refreshMillis
        }
    }

    public let identity: PeerIdentity
    public let cloud: PeerCloud
    public let configuration: Configuration
    public let endpoint: PeerEndpoint
    private let logger: Logger
    private let onListening: @Sendable (NodeAddress) -> Void
    private let state = NIOLockedValueBox<
        (address: NodeAddress?, advertised: [String], sequence: UInt64, registrations: Int)
    >((nil, [], 0, 0))

    /// `onListening` is called once the listener is bound and the first registration succeeded.
    public init(
        identity: PeerIdentity, cloud: PeerCloud, configuration: Configuration = .init(),
        logger: Logger = Logger(label: "distri.peer"), onListening: @escaping @Sendable (NodeAddress) -> Void = { _ in }
    ) {
        self.identity = identity
        self.cloud = cloud
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
        self.endpoint = PeerEndpoint(logger: logger)
        let name = identity.name
        endpoint.services.register(
            RegisteredService(name: Self.pingService, execution: .inline { _ in ByteBuffer(string: name) }))
        PeerSharing(identity: identity, cloud: cloud).registerDeliver(on: endpoint)
    }

    /// The bound address, once listening.
    public var address: NodeAddress? { state.withLockedValue { $0.address } }
    /// Successful registrations so far.
    public var registrations: Int { state.withLockedValue { $0.registrations } }
    /// The addresses published in the peer's record, once started: ``Configuration/advertise``, else
    /// the bound address; a wildcard one (`0.0.0.0`) is replaced by the local address of the route
    /// to the cloud (see ``AdvertisedAddress``).
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

    private func registerOnce() async throws {
        let (addresses, previous) = state.withLockedValue { ($0.advertised, $0.sequence) }
        let record = try identity.signedRecord(addresses: addresses, now: wallClockMillis(), after: previous)
        state.withLockedValue { $0.sequence = max($0.sequence, record.sequence) }
        try await cloud.register(record)
        state.withLockedValue { $0.registrations += 1 }
    }

    /// Tries the outbox's queued sends once (see ``PeerSharing/deliverOutbox()``); failures are logged.
    public func deliverOutbox() async {
        do {
            let (delivered, waiting) = try await PeerSharing(identity: identity, cloud: cloud).deliverOutbox()
            if delivered > 0 {
                logger.info("delivered queued sends", metadata: ["delivered": "\(delivered)", "waiting": "\(waiting)"])
            }
        } catch {
            logger.warning("delivering the outbox failed", metadata: ["error": "\(error)"])
        }
    }

    /// Starts (when not started), then refreshes every interval until graceful shutdown or
    /// cancellation; a failed refresh is logged and tried again at the next interval.
    public func run() async throws {
        if address == nil { try await start() }
        let interval = Duration.milliseconds(Int64(configuration.refreshMillis))
        await cancelWhenGracefulShutdown {
            // Bounded in time by the service's life: each pass sleeps one interval, and shutdown cancels the sleep.
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    break
                }
                do {
                    try await self.refresh()
                } catch {
                    self.logger.warning("refreshing the peer record failed", metadata: ["error": "\(error)"])
                }
                await self.deliverOutbox()
            }
        }
        await endpoint.shutdown()
    }
}
