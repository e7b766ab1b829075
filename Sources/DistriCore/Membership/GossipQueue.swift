/// Member updates waiting to be piggybacked: each is sent a bounded number of times, the least sent
/// (then the newest) first. A newer update about a member replaces the queued one.
struct GossipQueue: Sendable {
    private struct Entry: Sendable {
        var member: Member
        var transmits: Int
        var order: UInt64
    }

    private var entries: [String: Entry] = [:]
    private var counter: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// Queues `member` for gossip, replacing any queued update about the same id.
    mutating func enqueue(_ member: Member) {
        counter += 1
        entries[member.id] = Entry(member: member, transmits: 0, order: counter)
    }

    /// Drops any queued update about `id`.
    mutating func remove(_ id: String) {
        entries[id] = nil
    }

    /// Up to `count` updates, skipping ids in `excluding`; each taken update counts one transmission and
    /// is dropped after `limit` transmissions.
    mutating func take(_ count: Int, limit: Int, excluding: Set<String> = []) -> [Member] {
        guard count > 0, !entries.isEmpty else { return [] }
        let chosen = entries.values
            .filter { !excluding.contains($0.member.id) }
            .sorted { $0.transmits != $1.transmits ? $0.transmits < $1.transmits : $0.order > $1.order }
            .prefix(count)
        var result: [Member] = []
        result.reserveCapacity(chosen.count)
        for entry in chosen {
            result.append(entry.member)
            if entry.transmits + 1 >= limit {
                entries[entry.member.id] = nil
            } else {
                entries[entry.member.id]?.transmits += 1
            }
        }
        return result
    }
}
