/// Failure detection: direct probe, indirect probes, and what a failed probe means.
extension Membership {
    mutating func advanceProbe(
        now: UInt64, random: inout some RandomNumberGenerator, into out: inout [SWIMDirective]
    ) {
        if var probe {
            if !probe.indirectSent && (probe.directFailed || now >= probe.indirectAt) {
                probe.indirectSent = true
                let relays = otherIDs { $0 == .alive }.filter { $0 != probe.target }
                    .shuffled(using: &random).prefix(settings.indirectProbes)
                probe.expectedNacks = relays.count
                let gossip = piggyback(for: nil)
                for id in relays {
                    guard let address = others[id]?.member.address else { continue }
                    let message = SWIMMessage.pingRequest(
                        sequence: probe.sequence, target: probe.target, targetAddress: probe.address, gossip: gossip)
                    out.append(send(message, to: address))
                }
            }
            self.probe = probe
            if now >= probe.deadline {
                self.probe = nil
                probeFailed(probe, now: now, into: &out)
            }
        }
        guard probe == nil, now >= nextProbeAt else { return }
        let scale = UInt64(health + 1)
        guard let target = nextProbeTarget(random: &random), let address = others[target]?.member.address else {
            nextProbeAt = now + settings.probeInterval * scale
            return
        }
        nextProbeAt = now + probeInterval * scale
        sequence += 1
        probe = Probe(
            target: target, address: address, sequence: sequence, sentAt: now,
            indirectAt: now + probeTimeout * scale, deadline: nextProbeAt)
        out.append(send(.ping(sequence: sequence, gossip: piggyback(for: target)), to: address))
    }

    /// An ack for the probe in flight arrived, directly or through a relay.
    mutating func probeSucceeded() {
        probe = nil
        adjustHealth(-1)
    }

    /// No ack by the end of the probe interval: Lifeguard blames this node for every missing nack (or
    /// for having no one to ask), then the target becomes suspect, or the suspicion gains our confirmation.
    private mutating func probeFailed(_ probe: Probe, now: UInt64, into out: inout [SWIMDirective]) {
        adjustHealth(probe.expectedNacks > 0 ? probe.expectedNacks - probe.nacks : 1)
        guard var claim = others[probe.target]?.member, !claim.status.isGone else { return }
        claim.status = .suspect
        apply(claim, from: myself.id, now: now, into: &out)
    }

    /// The next member of a shuffled round-robin over the members not known to be gone; reshuffled
    /// after each round.
    private mutating func nextProbeTarget(random: inout some RandomNumberGenerator) -> String? {
        var reshuffled = false
        while true {
            if probeIndex >= probeOrder.count {
                guard !reshuffled else { return nil }
                reshuffled = true
                probeOrder = otherIDs { !$0.isGone }.shuffled(using: &random)
                probeIndex = 0
                if probeOrder.isEmpty { return nil }
            }
            let id = probeOrder[probeIndex]
            probeIndex += 1
            if let record = others[id], !record.member.status.isGone {
                return id
            }
        }
    }
}
