extension ReplicaEngine {
    /// Most chains kept ahead of the coverage per origin, and most origins with such chains. A chain
    /// beyond them is not kept, which costs only anti-entropy bytes: the next pull sends what the
    /// coverage does not claim.
    static let maxChainsAhead = 64

    /// A push's chain: when this replica covers the origin up to the chain's start, it now covers it
    /// up to the chain's end, and then any chain kept ahead that continues from there. A chain that
    /// starts later (it overtook an earlier push) is kept until the coverage reaches its start; its
    /// writes are already merged, so the claim holds whenever the gap before it is filled.
    mutating func follow(_ chain: PushChain) {
        guard chain.origin != clock.node else { return }
        let covered = coverage[chain.origin] ?? .zero
        if covered >= chain.since {
            coverage[chain.origin] = max(covered, chain.upTo)
            followChainsAhead(of: chain.origin)
        } else if chain.upTo > covered {
            var ahead = chainsAhead[chain.origin] ?? [:]
            guard ahead.count < Self.maxChainsAhead else { return }
            if chainsAhead[chain.origin] == nil && chainsAhead.count >= Self.maxChainsAhead {
                chainsAhead.removeAll()  // origins of old incarnations, most likely
            }
            ahead[chain.since] = max(ahead[chain.since] ?? chain.upTo, chain.upTo)
            chainsAhead[chain.origin] = ahead
        }
    }

    /// Advances the coverage of `origin` through the chains kept ahead that now continue from it,
    /// and forgets those it passed.
    mutating func followChainsAhead(of origin: String) {
        guard var ahead = chainsAhead[origin] else { return }
        var covered = coverage[origin] ?? .zero
        var advanced = true
        while advanced {
            advanced = false
            for (since, upTo) in ahead where since <= covered {
                ahead[since] = nil
                if upTo > covered {
                    covered = upTo
                    advanced = true
                }
            }
        }
        ahead = ahead.filter { $0.value > covered }
        coverage[origin] = covered
        chainsAhead[origin] = ahead.isEmpty ? nil : ahead
    }
}
