import Logging
import NIOCore
import NIOPosix

/// The address a node (or a peer's daemon) tells others to dial. A wildcard listen address
/// (`0.0.0.0`, `::`) is never advertised: others cannot dial it.
public enum AdvertisedAddress {
    /// Where the advertised address came from, for the log.
    public enum Source: String, Sendable {
        /// Given explicitly (`--advertise`).
        case configured = "--advertise"
        /// The bound address itself: it is not a wildcard.
        case listen = "the listen address"
        /// The local address of the route to one of the seeds.
        case routeToSeed = "the local address of the route to a seed"
        /// The address of the first non-loopback interface that is up (no route to a seed found).
        case interface = "the first non-loopback interface"
        /// The loopback address: no other interface is up.
        case loopback = "loopback (no other interface is up)"
    }

    /// True for the wildcard hosts that mean "every interface".
    public static func isWildcard(_ host: String) -> Bool {
        ["0.0.0.0", "::", "[::]", "*", ""].contains(host)
    }

    /// The address to advertise for a listener bound to `bound`: `configured` when given (its port 0
    /// means the bound port); the bound address when it is not a wildcard; else the local address
    /// of the route to the first reachable of `seeds` (the interface they would see us on), else
    /// the first non-loopback interface that is up, else loopback. Nothing is sent: a connected UDP
    /// socket only picks the route.
    public static func resolve(
        configured: NodeAddress?, bound: NodeAddress, seeds: [NodeAddress],
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async -> (address: NodeAddress, source: Source) {
        if let configured {
            return (
                NodeAddress(host: configured.host, port: configured.port == 0 ? bound.port : configured.port),
                .configured
            )
        }
        guard isWildcard(bound.host) else { return (bound, .listen) }
        for seed in seeds.prefix(8) {
            if let host = await localHost(routingTo: seed, group: group) {
                return (NodeAddress(host: host, port: bound.port), .routeToSeed)
            }
        }
        if let host = firstInterfaceHost() { return (NodeAddress(host: host, port: bound.port), .interface) }
        return (NodeAddress(host: "127.0.0.1", port: bound.port), .loopback)
    }

    /// The local address a datagram to `seed` would leave from (no datagram is sent).
    static func localHost(routingTo seed: NodeAddress, group: EventLoopGroup) async -> String? {
        guard
            let channel = try? await DatagramBootstrap(group: group).connect(host: seed.host, port: max(seed.port, 1))
                .get()
        else { return nil }
        defer { channel.close(promise: nil) }
        guard let host = channel.localAddress?.ipAddress, !isWildcard(host) else { return nil }
        return host
    }

    /// The first IPv4 address of an interface that is not loopback, else the first IPv6 one.
    static func firstInterfaceHost() -> String? {
        guard let devices = try? System.enumerateDevices() else { return nil }
        let hosts = devices.compactMap { device -> SocketAddress? in
            guard let address = device.address, let ip = address.ipAddress else { return nil }
            if ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("fe80:") { return nil }
            return address
        }
        if let v4 = hosts.first(where: { $0.protocol == .inet }) { return v4.ipAddress }
        return hosts.first?.ipAddress
    }
}
