import DistriCore
import Testing

@Suite("Relay quotas: bytes per sender per window, chunks in flight per peer")
struct RelayQuotasTests {
    @Test("a sender's bytes are capped per window, and the window restarts")
    func bytesPerWindow() throws {
        var quotas = RelayQuotas(limits: .init(bytesPerWindow: 1000, windowMillis: 60_000))
        try quotas.admit(sender: "alice", recipient: "bob", bytes: 600, now: 1_000)
        quotas.finish(sender: "alice", recipient: "bob")
        #expect(throws: RelayQuotas.Refusal.overWindow(sender: "alice", used: 600, limit: 1000, resetsInMillis: 50_000))
        {
            try quotas.admit(sender: "alice", recipient: "bob", bytes: 500, now: 11_000)
        }
        // Another sender has a window of its own.
        try quotas.admit(sender: "carol", recipient: "bob", bytes: 900, now: 11_000)
        quotas.finish(sender: "carol", recipient: "bob")
        // A new window.
        try quotas.admit(sender: "alice", recipient: "bob", bytes: 1000, now: 61_000)
        quotas.finish(sender: "alice", recipient: "bob")
    }

    @Test("chunks in flight are capped per sender and per recipient, and finishing frees them")
    func inFlight() throws {
        var quotas = RelayQuotas(limits: .init(chunksInFlightPerPeer: 2))
        try quotas.admit(sender: "alice", recipient: "bob", bytes: 1, now: 0)
        try quotas.admit(sender: "carol", recipient: "bob", bytes: 1, now: 0)
        #expect(throws: RelayQuotas.Refusal.tooManyInFlight(peer: "bob", limit: 2)) {
            try quotas.admit(sender: "dave", recipient: "bob", bytes: 1, now: 0)
        }
        try quotas.admit(sender: "alice", recipient: "erin", bytes: 1, now: 0)
        #expect(throws: RelayQuotas.Refusal.tooManyInFlight(peer: "alice", limit: 2)) {
            try quotas.admit(sender: "alice", recipient: "frank", bytes: 1, now: 0)
        }
        quotas.finish(sender: "carol", recipient: "bob")
        try quotas.admit(sender: "dave", recipient: "bob", bytes: 1, now: 0)
    }

    @Test("the table of senders is bounded: ended windows make room, live ones refuse a newcomer")
    func trackedPeersAreBounded() throws {
        var quotas = RelayQuotas(limits: .init(windowMillis: 1000, maxTrackedPeers: 2))
        for sender in ["a", "b"] {
            try quotas.admit(sender: sender, recipient: "r", bytes: 1, now: 0)
            quotas.finish(sender: sender, recipient: "r")
        }
        #expect(throws: RelayQuotas.Refusal.tooManyPeers(limit: 2)) {
            try quotas.admit(sender: "c", recipient: "r", bytes: 1, now: 500)
        }
        try quotas.admit(sender: "c", recipient: "r", bytes: 1, now: 1500)
        #expect(quotas.trackedPeers == 1)
    }
}
