/// Handling of arriving messages.
extension Membership {
    /// A message arrived. The sender's self-view in `from` is merged first (it may reveal a new member,
    /// a refutation or newer metadata), then the message's gossip, then the message is answered.
    public mutating func receive(
        _ envelope: SWIMEnvelope, now: UInt64, random: inout some RandomNumberGenerator
    ) -> [SWIMDirective] {
        let sender = envelope.from
        guard myself.status != .left, sender.id != myself.id else { return [] }
        var out: [SWIMDirective] = []
        apply(sender, from: sender.id, now: now, into: &out)
        switch envelope.message {
        case .ping(let sequence, let gossip):
            apply(gossip, from: sender.id, now: now, into: &out)
            out.append(send(.ack(sequence: sequence, gossip: piggyback(for: sender.id)), to: sender.address))

        case .pingRequest(let requested, let target, let targetAddress, let gossip):
            apply(gossip, from: sender.id, now: now, into: &out)
            if target == myself.id {
                out.append(send(.ack(sequence: requested, gossip: piggyback(for: sender.id)), to: sender.address))
                break
            }
            sequence += 1
            relays[sequence] = Relay(
                requester: sender.id, requesterAddress: sender.address, requesterSequence: requested,
                targetAddress: targetAddress,
                nackAt: now + max(settings.probeTimeout, measuredProbeTimeout ?? 0) * 4 / 5,
                expiresAt: now + suspicionInterval)
            out.append(send(.ping(sequence: sequence, gossip: piggyback(for: target)), to: targetAddress))

        case .ack(let acked, let gossip):
            apply(gossip, from: sender.id, now: now, into: &out)
            if let probe, probe.sequence == acked {
                // Only the target's own ack measures the path; one forwarded by a relay took two.
                if sender.id == probe.target {
                    roundTrips.add(now >= probe.sentAt ? now - probe.sentAt : 0)
                    // The first sample may shorten the interval a cautious start set.
                    nextProbeAt = min(nextProbeAt, probe.sentAt + probeInterval * UInt64(health + 1))
                }
                probeSucceeded()
            } else if let relay = relays.removeValue(forKey: acked) {
                let forwarded = SWIMMessage.ack(
                    sequence: relay.requesterSequence, gossip: piggyback(for: relay.requester))
                out.append(send(forwarded, to: relay.requesterAddress))
            }

        case .nack(let nacked):
            if probe?.sequence == nacked {
                probe?.nacks += 1
            }

        case .pushPull(let state, let isReply):
            apply(state, from: sender.id, now: now, into: &out)
            if !isReply {
                out.append(send(.pushPull(members: members, isReply: true), to: sender.address))
            }
        }
        return out
    }
}
