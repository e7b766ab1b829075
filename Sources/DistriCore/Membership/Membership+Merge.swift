/// The merge rules (as in hashicorp/memberlist): how a claim about a member changes our view of it.
extension Membership {
    /// Applies `claim` (a sender's self-view, a gossiped update or a push/pull entry) received from
    /// member `sender`.
    ///
    /// - A higher incarnation wins, whatever its status (only `alive` ones revive a gone member, since a
    ///   member bumps its incarnation only to refute or to leave).
    /// - At the same incarnation `dead`/`left` > `suspect` > `alive`; another `suspect` from a new sender
    ///   confirms the suspicion (Lifeguard); a higher `metadataVersion` replaces the metadata only.
    /// - A claim about myself that is not `alive` at my incarnation or above, or any claim at a higher
    ///   incarnation, is refuted by jumping past it and gossiping `alive`.
    /// - Unknown members are added unless the claim says they are gone.
    mutating func apply(_ claim: Member, from sender: String, now: UInt64, into out: inout [SWIMDirective]) {
        if claim.id == myself.id {
            refuteIfNeeded(claim)
            return
        }
        guard var record = others[claim.id] else {
            guard !claim.status.isGone else { return }
            others[claim.id] = Record(member: claim, since: now)
            if claim.status == .suspect {
                startSuspicion(of: claim, origin: sender, now: now)
            }
            gossip.enqueue(claim)
            scheduleProbe(of: claim.id)
            out.append(.statusChanged(claim, previous: nil))
            return
        }
        let current = record.member
        let accepted =
            claim.incarnation > current.incarnation
            || (claim.incarnation == current.incarnation
                && (claim.status.rank > current.status.rank || (claim.status == .left && current.status == .dead)))
        guard accepted else {
            guard claim.incarnation == current.incarnation else { return }
            if claim.status == .suspect && current.status == .suspect,
                suspicions[claim.id]?.confirm(by: sender) == true
            {
                gossip.enqueue(current)
            }
            if claim.metadataVersion > current.metadataVersion {
                record.member.metadata = claim.metadata
                record.member.metadataVersion = claim.metadataVersion
                others[claim.id] = record
            }
            return
        }
        var updated = claim
        if claim.incarnation == current.incarnation && current.metadataVersion > claim.metadataVersion {
            updated.metadata = current.metadata
            updated.metadataVersion = current.metadataVersion
        }
        record.member = updated
        if updated.status != current.status {
            record.since = now
        }
        others[claim.id] = record
        if updated.status == .suspect {
            startSuspicion(of: updated, origin: sender, now: now)
        } else {
            suspicions[claim.id] = nil
        }
        gossip.enqueue(updated)
        if current.status.isGone && !updated.status.isGone {
            scheduleProbe(of: claim.id)
        }
        if updated.status != current.status {
            out.append(.statusChanged(updated, previous: current.status))
        }
    }

    /// Applies every member of a gossip list or full state.
    mutating func apply(_ claims: [Member], from sender: String, now: UInt64, into out: inout [SWIMDirective]) {
        for claim in claims {
            apply(claim, from: sender, now: now, into: &out)
        }
    }

    private mutating func refuteIfNeeded(_ claim: Member) {
        guard myself.status != .left else { return }
        let accused = claim.status != .alive && claim.incarnation >= myself.incarnation
        guard accused || claim.incarnation > myself.incarnation else { return }
        myself.incarnation = max(myself.incarnation, claim.incarnation) + 1
        gossip.enqueue(myself)
        if accused {
            adjustHealth(1)
        }
    }

    private mutating func startSuspicion(of member: Member, origin: String, now: UInt64) {
        suspicions[member.id] = Suspicion(
            incarnation: member.incarnation, origin: origin, clusterSize: activeCount, now: now, settings: settings,
            probeInterval: suspicionInterval)
    }

    /// Adds a member to the rest of the current probe round, so it is probed before the next shuffle.
    private mutating func scheduleProbe(of id: String) {
        if !probeOrder[min(probeIndex, probeOrder.count)...].contains(id) {
            probeOrder.append(id)
        }
    }
}
