import Foundation
import Testing

/// The test-hosts harness itself: latency with jitter through the delay relay, loss, a cut link, NAT.
/// Skipped (with the reason printed) where network namespaces cannot be made: not root, no
/// CAP_NET_ADMIN, or nftables/python3 missing (scripts/install-system-packages.sh installs them).
@Suite(.serialized)
struct TestNetworkTests {
    @Test(
        "Namespaced hosts: 40 ms RTT with jitter, loss, a cut and restored link, a NAT gateway",
        .enabled("needs network namespaces: root or CAP_NET_ADMIN, nftables, python3") { TestNetwork.isAvailable },
        .timeLimit(.minutes(1)))
    func harness() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        func phase(_ name: String) { print("testnet \(name) at \(clock.now - start)") }
        let network = try TestNetwork.make(prefix: "tn")
        var servers: [Process] = []
        defer {
            for server in servers { stopProcess(server) }
            network.teardown()
        }
        // 10 ms on each link: 20 ms one way between two hosts, 40 ms round trip; jitter 5 ms a link.
        let a = try network.addHost("a", delayMillis: 10, jitterMillis: 5)
        let b = try network.addHost("b", delayMillis: 10, jitterMillis: 5)
        let c = try network.addHost("c", delayMillis: 10, jitterMillis: 5)
        let echoB = try network.startEcho(on: b, port: 7100)
        servers.append(echoB)
        servers.append(try network.startEcho(on: c, port: 7100))
        // ip netns exec execs the program: the Process's PID is the echo server's own.
        let command = (try? String(contentsOfFile: "/proc/\(echoB.processIdentifier)/cmdline", encoding: .utf8)) ?? ""
        #expect(command.contains("netprobe.py"), "PID \(echoB.processIdentifier) runs \(command)")

        phase("hosts and echo servers up")
        // Latency: the relay delays each direction by both links' delays, +- jitter.
        for (from, to) in [(a, b), (a, c), (c, b)] {
            let probe = try network.probe(from: from, to: "\(to.address):7100", count: 20)
            let rtts = try #require(probe.rtts_ms, "\(from) -> \(to): \(probe.error ?? "")")
            let median = try #require(probe.median)
            print(
                "testnet RTT \(from) -> \(to), 10+10 ms +- 5+5 ms: min \(format(rtts.min())) median \(format(median)) "
                    + "max \(format(rtts.max())) ms over \(rtts.count)")
            #expect(median >= 35 && median <= 80, "median RTT \(median) ms, expected about 40")
            #expect(
                rtts.min()! >= 20, "a round trip of \(rtts.min()!) ms is below the links' floor (20 +- 10 ms each way)")
        }

        phase("latency measured")
        // Loss: at 100% on b's link nothing gets through; at 0% it works again.
        try network.setLoss(b, percent: 100)
        let lost = try network.probe(from: a, to: "\(b.address):7100", count: 1, timeout: 1)
        print("testnet 100% loss on b: \(lost.error ?? "ok")")
        #expect(!lost.ok)
        try network.setLoss(b, percent: 0)
        #expect(try network.probe(from: a, to: "\(b.address):7100", count: 3, timeout: 3).ok)

        phase("loss checked")
        // A cut link: b unreachable, and b reaches nobody; restored, both work again.
        try network.cut(b)
        let into = try network.probe(from: a, to: "\(b.address):7100", count: 1, timeout: 1)
        let outOf = try network.probe(from: b, to: "\(c.address):7100", count: 1, timeout: 1)
        print("testnet b cut: a -> b \(into.error ?? "ok"), b -> c \(outOf.error ?? "ok")")
        #expect(!into.ok)
        #expect(!outOf.ok)
        try network.restore(b)
        // The first SYN after the carrier returns may need a retransmission (1 s): up to 5 tries of 3 s.
        var restored = false
        for _ in 0..<5 where !restored {
            restored = try network.probe(from: a, to: "\(b.address):7100", count: 2, timeout: 3).ok
        }
        #expect(restored, "a -> b after restoring b's link")
        #expect(try network.probe(from: b, to: "\(c.address):7100", count: 2, timeout: 3).ok)

        phase("cut and restore checked")
        // NAT: n behind gateway g dials out (with g's link delay); nobody dials in.
        let g = try network.addNATGateway("g", delayMillis: 10, jitterMillis: 5)
        let n = try network.addHost("n", behind: g)
        servers.append(try network.startEcho(on: n, port: 7100))
        let out = try network.probe(from: n, to: "\(b.address):7100", count: 10)
        print("testnet NAT: \(n) behind \(g) -> \(b): median \(format(out.median)) ms \(out.error ?? "")")
        #expect(out.ok)
        #expect((out.median ?? 0) >= 35, "the gateway's link delay applies")
        let inbound = try network.probe(from: a, to: "\(n.address):7100", count: 1, timeout: 1)
        let toGateway = try network.probe(from: a, to: "\(g.address):7100", count: 1, timeout: 1)
        print("testnet NAT: a -> n \(inbound.error ?? "ok"), a -> the gateway \(toGateway.error ?? "ok")")
        #expect(!inbound.ok)
        #expect(!toGateway.ok)

        phase("NAT checked")
        let namespaces = try network.namespaces()
        #expect(namespaces.count == 6, "wan, a, b, c, g, n: \(namespaces)")
        for server in servers { stopProcess(server) }
        servers = []
        network.teardown()
        phase("torn down")
        #expect(try network.namespaces().isEmpty, "teardown leaves no namespace")
    }
}

private func format(_ value: Double?) -> String {
    guard let value else { return "-" }
    return String(format: "%.1f", value)
}
