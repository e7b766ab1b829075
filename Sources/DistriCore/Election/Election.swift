/// A node that could run a task, as the electing node sees it.
public struct ElectionCandidate: Sendable, Hashable {
    /// The node's id.
    public var id: String
    /// The node's own report of work in flight and queued over capacity (from gossip; 0 = idle).
    public var load: Double
    /// Tasks the electing node has sent there and not yet seen finish: fresher than gossip.
    public var outstanding: Int
    /// Tasks the node runs at once.
    public var capacity: Int
    /// 1 for a node that has just joined, falling to 0 when it has warmed up.
    public var warmUp: Double

    /// A candidate with the given figures.
    public init(id: String, load: Double, outstanding: Int = 0, capacity: Int, warmUp: Double = 0) {
        self.id = id
        self.load = load
        self.outstanding = outstanding
        self.capacity = capacity
        self.warmUp = warmUp
    }

    /// Expected occupancy if one more task were sent: lower is better.
    public func score(policy: ElectionPolicy) -> Double {
        let capacity = Double(max(1, self.capacity))
        return load + (Double(outstanding) + 1) / capacity + warmUp * policy.warmUpPenalty
    }
}

/// How an executor is chosen.
public struct ElectionPolicy: Sendable, Hashable {
    /// Up to this many candidates every one is scored; beyond, two random ones (power of two choices
    /// without replacement). Default 16.
    public var fullScanLimit: Int
    /// Score added to a node that has just joined, shrinking to 0 as it warms up. Default 0.5
    /// (as if half its slots were taken).
    public var warmUpPenalty: Double
    /// The electing node keeps a task unless another node's score is lower by more than this, which
    /// saves a network hop when the cluster is evenly loaded. Default 0.05.
    public var localPreference: Double

    /// A policy with the given values; every argument has a default.
    public init(fullScanLimit: Int = 16, warmUpPenalty: Double = 0.5, localPreference: Double = 0.05) {
        self.fullScanLimit = fullScanLimit
        self.warmUpPenalty = warmUpPenalty
        self.localPreference = localPreference
    }
}

/// Chooses the one node that runs a task: the least loaded among the candidates. Pure and
/// deterministic for a given random source.
public enum Election {
    /// Elects an executor among `candidates` (alive members offering the service). `local` is the
    /// electing node's id; it wins ties and near-ties. Other ties go to the candidate with the
    /// highest rendezvous hash of (task, id), so equal nodes share tasks evenly but predictably.
    public static func elect(
        _ candidates: [ElectionCandidate], local: String?, taskID: UInt64, policy: ElectionPolicy = .init(),
        random: inout some RandomNumberGenerator
    ) -> ElectionCandidate? {
        guard !candidates.isEmpty else { return nil }
        var pool = candidates
        if candidates.count > policy.fullScanLimit {
            let first = Int.random(in: 0..<candidates.count, using: &random)
            var second = Int.random(in: 0..<(candidates.count - 1), using: &random)
            if second >= first { second += 1 }
            pool = [candidates[first], candidates[second]]
            if let local, let mine = candidates.first(where: { $0.id == local }), !pool.contains(mine) {
                pool.append(mine)
            }
        }
        var best = pool[0]
        for candidate in pool.dropFirst() where better(candidate, than: best, taskID: taskID, policy: policy) {
            best = candidate
        }
        if let local, best.id != local, let mine = pool.first(where: { $0.id == local }),
            mine.score(policy: policy) - best.score(policy: policy) <= policy.localPreference
        {
            return mine
        }
        return best
    }

    private static func better(
        _ a: ElectionCandidate, than b: ElectionCandidate, taskID: UInt64, policy: ElectionPolicy
    ) -> Bool {
        let scoreA = a.score(policy: policy)
        let scoreB = b.score(policy: policy)
        if scoreA != scoreB { return scoreA < scoreB }
        return rendezvous(taskID, a.id) > rendezvous(taskID, b.id)
    }

    /// A stable 64-bit hash of a task and a node id (FNV-1a, then a SplitMix finaliser).
    public static func rendezvous(_ taskID: UInt64, _ id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ taskID
        for byte in id.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }
}
