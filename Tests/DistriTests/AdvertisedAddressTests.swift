import Distri
import Testing

@Suite struct AdvertisedAddressTests {
    @Test("a wildcard listen address is never advertised: the route to a seed, else an interface; --advertise wins")
    func wildcardNeverAdvertised() async {
        let wildcard = NodeAddress(host: "0.0.0.0", port: 7000)
        let toSeed = await AdvertisedAddress.resolve(
            configured: nil, bound: wildcard, seeds: [NodeAddress(host: "127.0.0.1", port: 7001)])
        #expect(toSeed.address == NodeAddress(host: "127.0.0.1", port: 7000))
        #expect(toSeed.source == .routeToSeed)
        let alone = await AdvertisedAddress.resolve(configured: nil, bound: wildcard, seeds: [])
        #expect(!AdvertisedAddress.isWildcard(alone.address.host) && alone.address.port == 7000)
        #expect(alone.source == .interface || alone.source == .loopback)
        let configured = await AdvertisedAddress.resolve(
            configured: NodeAddress(host: "node1.example", port: 0), bound: wildcard, seeds: [])
        #expect(
            configured.address == NodeAddress(host: "node1.example", port: 7000) && configured.source == .configured)
        let plain = await AdvertisedAddress.resolve(
            configured: nil, bound: NodeAddress(host: "127.0.0.1", port: 9), seeds: [])
        #expect(plain.address == NodeAddress(host: "127.0.0.1", port: 9) && plain.source == .listen)
        #expect(AdvertisedAddress.isWildcard("::") && AdvertisedAddress.isWildcard("0.0.0.0"))
    }
}
