import Testing

@testable import DistriCore

/// Helpers for driving `Membership` instances by hand.
private func node(
    _ id: String, incarnation: UInt64 = 1, seeds: [String] = [], now: UInt64 = 0, settings: SWIMSettings = .init()
) -> Membership {
    Membership(
        myself: Member(id: id, address: "\(id):1", incarnation: incarnation), seeds: seeds, settings: settings, now: now
    )
}

private func sends(_ directives: [SWIMDirective]) -> [(envelope: SWIMEnvelope, to: String)] {
    directives.compactMap {
        if case .send(let envelope, let address) = $0 { (envelope, address) } else { nil }
    }
}

private func changes(_ directives: [SWIMDirective]) -> [(member: Member, previous: MemberStatus?)] {
    directives.compactMap {
        if case .statusChanged(let member, let previous) = $0 { (member, previous) } else { nil }
    }
}

private func ping(from sender: Member, gossip: [Member] = [], sequence: UInt64 = 1) -> SWIMEnvelope {
    SWIMEnvelope(from: sender, message: .ping(sequence: sequence, gossip: gossip))
}

/// Makes `membership` know every member in `others` as alive.
private func introduce(_ others: [Membership], to membership: inout Membership, now: UInt64 = 0) {
    var random = SimulationRandom(seed: 1)
    for other in others {
        _ = membership.receive(ping(from: other.myself), now: now, random: &random)
    }
}

@Suite struct MembershipTests {
    var random = SimulationRandom(seed: 99)

    @Test("a node joins through a seed with a push/pull exchange")
    mutating func join() throws {
        var a = node("a")
        var b = node("b", seeds: ["a:1"])
        let out = sends(b.tick(now: 0, random: &random))
        #expect(out.count == 1)
        #expect(out[0].to == "a:1")
        guard case .pushPull(_, isReply: false) = out[0].envelope.message else {
            Issue.record("expected a push/pull request")
            return
        }
        let atA = a.receive(out[0].envelope, now: 1, random: &random)
        #expect(changes(atA).map(\.member.id) == ["b"])
        let reply = try #require(sends(atA).first)
        #expect(reply.to == "b:1")
        _ = b.receive(reply.envelope, now: 2, random: &random)
        #expect(a.aliveMembers.map(\.id) == ["a", "b"])
        #expect(b.aliveMembers.map(\.id) == ["a", "b"])
        // Joined: no more join retries.
        #expect(sends(b.tick(now: 600, random: &random)).allSatisfy { !$0.envelope.message.isPushPull })
    }

    @Test("a suspected node refutes with a higher incarnation, and its local health rises")
    mutating func refutation() throws {
        var a = node("a", incarnation: 5)
        let b = node("b")
        var suspected = a.myself
        suspected.status = .suspect
        let out = a.receive(ping(from: b.myself, gossip: [suspected]), now: 10, random: &random)
        #expect(a.myself.incarnation == 6)
        #expect(a.myself.status == .alive)
        #expect(a.localHealth == 1)
        let ack = try #require(sends(out).first)
        guard case .ack(1, let gossip) = ack.envelope.message else {
            Issue.record("expected an ack")
            return
        }
        #expect(gossip.contains { $0.id == "a" && $0.status == .alive && $0.incarnation == 6 })
        #expect(ack.envelope.from.incarnation == 6)

        // The refutation overrides the suspicion elsewhere.
        var c = node("c")
        introduce([node("a", incarnation: 5)], to: &c)
        _ = c.receive(ping(from: b.myself, gossip: [suspected]), now: 11, random: &random)
        #expect(c.member("a")?.status == .suspect)
        _ = c.receive(ack.envelope, now: 12, random: &random)
        #expect(c.member("a")?.status == .alive)
        #expect(c.member("a")?.incarnation == 6)
    }

    @Test("an unconfirmed suspicion becomes dead after the maximum timeout")
    mutating func suspicionTimeout() {
        var a = node("a")
        let b = node("b")
        let c = node("c")
        introduce([b, c], to: &a)
        var suspectB = b.myself
        suspectB.status = .suspect
        _ = a.receive(ping(from: c.myself, gossip: [suspectB]), now: 1_000, random: &random)
        #expect(a.member("b")?.status == .suspect)
        // n = 3: min = 3 × 1 × 200 ms = 600 ms, k = 1, max = 4 × 600 ms = 2400 ms.
        #expect(changes(a.tick(now: 1_000 + 2_399, random: &random)).isEmpty)
        #expect(a.member("b")?.status == .suspect)
        let fired = changes(a.tick(now: 1_000 + 2_400, random: &random))
        #expect(fired.map(\.member.id) == ["b"])
        #expect(fired.first?.member.status == .dead)
        #expect(fired.first?.previous == .suspect)
    }

    @Test("independent confirmations shorten the suspicion to the minimum")
    mutating func confirmations() {
        var a = node("a")
        let b = node("b")
        let c = node("c")
        let d = node("d")
        introduce([b, c, d], to: &a)
        var suspectB = b.myself
        suspectB.status = .suspect
        _ = a.receive(ping(from: c.myself, gossip: [suspectB]), now: 1_000, random: &random)
        // A repeat from the same member is not a confirmation.
        _ = a.receive(ping(from: c.myself, gossip: [suspectB]), now: 1_100, random: &random)
        #expect(changes(a.tick(now: 1_600, random: &random)).isEmpty)
        // d confirms: n = 4, k = min(3 - 2, 4 - 2) = 1, so the timeout drops to min = 600 ms.
        _ = a.receive(ping(from: d.myself, gossip: [suspectB]), now: 1_300, random: &random)
        let fired = changes(a.tick(now: 1_600, random: &random))
        #expect(fired.map(\.member.status) == [.dead])
    }

    @Test("a suspicion timeout shrinks logarithmically from max to min with confirmations")
    func suspicionFormula() {
        var settings = SWIMSettings()
        settings.suspicionMultiplier = 5
        settings.suspicionMaxMultiplier = 6
        var suspicion = Suspicion(
            incarnation: 1, origin: "x", clusterSize: 20, now: 0, settings: settings,
            probeInterval: settings.probeInterval)
        // min = 5 × log10(20) × 200 ≈ 1301 ms, max = 6 × min, k = 3.
        #expect(suspicion.minimumTimeout == 1_301)
        #expect(suspicion.expectedConfirmations == 3)
        #expect(suspicion.timeout == suspicion.maximumTimeout)
        var timeouts = [suspicion.timeout]
        for confirmer in ["y", "z", "w"] {
            let isNew = suspicion.confirm(by: confirmer)
            #expect(isNew)
            timeouts.append(suspicion.timeout)
        }
        #expect(timeouts == timeouts.sorted(by: >))
        #expect(timeouts.last == suspicion.minimumTimeout)
        // log(2) / log(4) = 0.5: halfway after one confirmation.
        let halfway = suspicion.maximumTimeout - (suspicion.maximumTimeout - suspicion.minimumTimeout) / 2
        #expect(timeouts[1] + 1 >= halfway && timeouts[1] <= halfway + 1)
        let beyondExpected = suspicion.confirm(by: "v")
        #expect(!beyondExpected)
    }

    @Test("a graceful leave is seen at once, without suspicion")
    mutating func leave() throws {
        var a = node("a")
        var b = node("b")
        introduce([b], to: &a)
        introduce([a], to: &b)
        let out = b.leave(now: 50)
        #expect(b.myself.status == .left)
        #expect(b.myself.incarnation == 2)
        let announcement = try #require(sends(out).first)
        #expect(announcement.to == "a:1")
        let seen = changes(a.receive(announcement.envelope, now: 51, random: &random))
        #expect(seen.map(\.member.status) == [.left])
        #expect(seen.first?.previous == .alive)
        #expect(a.aliveMembers.map(\.id) == ["a"])
        // A left node stays quiet.
        #expect(b.tick(now: 1_000, random: &random).isEmpty)
    }

    @Test("a node restarted at a lower incarnation than the cluster remembers revives itself")
    mutating func restartAtLowerIncarnation() throws {
        var a = node("a")
        let oldB = node("b", incarnation: 10)
        let c = node("c")
        introduce([oldB, c], to: &a)
        var deadB = oldB.myself
        deadB.status = .dead
        _ = a.receive(ping(from: c.myself, gossip: [deadB]), now: 100, random: &random)
        #expect(a.member("b")?.status == .dead)

        // b restarts at incarnation 0 and joins through a.
        var b = node("b", incarnation: 0, seeds: ["a:1"], now: 200)
        let join = try #require(sends(b.tick(now: 200, random: &random)).first)
        let atA = a.receive(join.envelope, now: 201, random: &random)
        #expect(a.member("b")?.status == .dead, "a stale incarnation must not revive a dead member")
        let reply = try #require(sends(atA).first { $0.to == "b:1" })
        _ = b.receive(reply.envelope, now: 202, random: &random)
        #expect(b.myself.incarnation == 11)
        #expect(b.myself.status == .alive)

        // b's next message revives it at a.
        let answer = try #require(sends(b.receive(ping(from: a.myself), now: 203, random: &random)).first)
        let revived = changes(a.receive(answer.envelope, now: 204, random: &random))
        #expect(revived.contains { $0.member.id == "b" && $0.member.status == .alive && $0.previous == .dead })
        #expect(a.member("b")?.incarnation == 11)
    }

    @Test("missed acks and nacks raise local health, which slows probing; acks lower it")
    mutating func localHealth() throws {
        // The LAN timers held fixed (no measured round trip, no cautious start): the gaps are exact.
        var a = node("a", settings: .fixedProbeTimeout)
        introduce([node("b"), node("c")], to: &a)
        // Nothing reaches a: every probe fails and no relay's nack comes back.
        var pings: [(time: UInt64, envelope: SWIMEnvelope)] = []
        for now in stride(from: UInt64(0), through: 2_100, by: 20) {
            for send in sends(a.tick(now: now, random: &random)) {
                if case .ping = send.envelope.message { pings.append((now, send.envelope)) }
            }
        }
        #expect(a.localHealth == 4)
        let gaps = zip(pings.dropFirst(), pings).map { $0.time - $1.time }
        #expect(gaps == [200, 400, 600, 800])

        // A successful probe lowers the score.
        let last = try #require(pings.last)
        guard case .ping(let sequence, _) = last.envelope.message else { return }
        let ack = SWIMEnvelope(from: node("x").myself, message: .ack(sequence: sequence, gossip: []))
        _ = a.receive(ack, now: 2_101, random: &random)
        #expect(a.localHealth == 3)
    }

    @Test("a node probes cautiously (1 s timeout) until its first direct ack, then at the measured round trip")
    mutating func cautiousStart() throws {
        var a = node("a")
        introduce([node("b")], to: &a)
        #expect(a.probeTimeout == 1_000)
        #expect(a.probeInterval == 3_000)
        let ping = try #require(sends(a.tick(now: 0, random: &random)).first { $0.to == "b:1" })
        guard case .ping(let sequence, _) = ping.envelope.message else { return }
        // No suspicion at the LAN's 200 ms: the probe waits for its 1 s timeout.
        #expect(changes(a.tick(now: 500, random: &random)).isEmpty)
        _ = a.receive(
            SWIMEnvelope(from: node("b").myself, message: .ack(sequence: sequence, gossip: [])), now: 600,
            random: &random)
        #expect(a.roundTrips.smoothed == 600)
        #expect(a.probeTimeout == 1_800)
        #expect(a.probeInterval == 5_400)
        // Fast answers bring it back to the configured timers.
        for round in UInt64(0)..<40 {
            let now = 10_000 + round * 6_000
            guard let next = sends(a.tick(now: now, random: &random)).first(where: { $0.to == "b:1" }),
                case .ping(let sequence, _) = next.envelope.message
            else { continue }
            _ = a.receive(
                SWIMEnvelope(from: node("b").myself, message: .ack(sequence: sequence, gossip: [])), now: now + 1,
                random: &random)
        }
        #expect(a.probeTimeout == SWIMSettings().probeTimeout)
        #expect(a.probeInterval == SWIMSettings().probeInterval)
    }

    @Test("a relay forwards the target's ack, or answers nack when the target is silent")
    mutating func indirectProbe() throws {
        var relay = node("r")
        let requester = node("q")
        let target = node("t")
        introduce([requester, target], to: &relay)
        let request = SWIMEnvelope(
            from: requester.myself, message: .pingRequest(sequence: 77, target: "t", targetAddress: "t:1", gossip: []))
        let ping = try #require(sends(relay.receive(request, now: 0, random: &random)).first)
        #expect(ping.to == "t:1")
        guard case .ping(let relaySequence, _) = ping.envelope.message else {
            Issue.record("expected a ping to the target")
            return
        }
        let ack = SWIMEnvelope(from: target.myself, message: .ack(sequence: relaySequence, gossip: []))
        let forwarded = try #require(sends(relay.receive(ack, now: 5, random: &random)).first)
        #expect(forwarded.to == "q:1")
        guard case .ack(77, _) = forwarded.envelope.message else {
            Issue.record("expected the ack forwarded with the requester's sequence")
            return
        }

        // A silent target: nack after 80 % of the probe timeout.
        _ = relay.receive(request, now: 1_000, random: &random)
        #expect(
            sends(relay.tick(now: 1_079, random: &random)).allSatisfy { $0.envelope.message != .nack(sequence: 77) })
        let nack = sends(relay.tick(now: 1_080, random: &random)).filter { $0.envelope.message == .nack(sequence: 77) }
        #expect(nack.map(\.to) == ["q:1"])
    }

    @Test("metadata spreads on the sender's self-view, newer version wins, and is not gossiped")
    mutating func metadata() {
        var a = node("a")
        var b = node("b")
        introduce([b], to: &a)
        b.updateMetadata(MemberMetadata(load: 0.5, capacity: 8, services: ["Zip", "Echo"]))
        #expect(b.myself.metadataVersion == 1)
        #expect(b.myself.metadata.services == ["Echo", "Zip"])
        let out = a.receive(ping(from: b.myself), now: 10, random: &random)
        #expect(a.member("b")?.metadata.load == 0.5)
        #expect(changes(out).isEmpty)
        // An older self-view does not roll it back.
        var stale = b.myself
        stale.metadataVersion = 0
        stale.metadata = MemberMetadata()
        _ = a.receive(ping(from: stale), now: 11, random: &random)
        #expect(a.member("b")?.metadata.capacity == 8)
        // Only b's join was gossiped, never its metadata change.
        let c = node("c")
        var gossiped: [Member] = []
        for step in 0..<10 {
            for send in sends(a.receive(ping(from: c.myself, sequence: UInt64(step)), now: 20, random: &random)) {
                if case .ack(_, let gossip) = send.envelope.message { gossiped += gossip }
            }
        }
        #expect(gossiped.filter { $0.id == "b" }.allSatisfy { $0.metadataVersion == 0 })
    }

    @Test("dead members are forgotten after the retention period")
    mutating func retention() {
        var a = node("a")
        let b = node("b")
        let c = node("c")
        introduce([b, c], to: &a)
        var deadB = b.myself
        deadB.status = .dead
        _ = a.receive(ping(from: c.myself, gossip: [deadB]), now: 0, random: &random)
        _ = a.tick(now: 29_000, random: &random)
        #expect(a.member("b")?.status == .dead)
        _ = a.tick(now: 31_000, random: &random)
        #expect(a.member("b") == nil)
        #expect(a.members.map(\.id) == ["a", "c"])
    }
}

extension SWIMMessage {
    fileprivate var isPushPull: Bool {
        if case .pushPull = self { true } else { false }
    }
}

extension SWIMSettings {
    /// The defaults with the probe timeout held at ``probeTimeout`` (no round-trip adaptation).
    static var fixedProbeTimeout: SWIMSettings {
        var settings = SWIMSettings()
        settings.maxProbeTimeout = 0
        return settings
    }
}
