import DistriCore
import DistriIdentity
import Testing

/// The ledger's rules on documents held in memory: each decided write is applied as the replica
/// would (an add only when absent, a conditional update only where its condition holds).
@Suite struct GrantLedgerTests {
    /// One collection's documents, written only through the ledger's decisions.
    struct Documents {
        var byID: [String: [String: JSONValue]] = [:]

        /// Applies `write`; false when the replica would refuse it with a conflict.
        mutating func apply(_ write: LedgerWrite) throws -> Bool {
            guard let condition = write.condition else {
                guard byID[write.id] == nil else { return false }
                byID[write.id] = write.update.set
                return true
            }
            guard let current = byID[write.id], try DocumentFilter(condition).matches(current) else { return false }
            var next = write.update.replace ? [:] : current
            for (field, value) in write.update.settingIncrements(from: current).set { next[field] = value }
            byID[write.id] = next
            return true
        }
    }

    struct Peer {
        var keys: SigningKeyPair
        var record: PeerRecord

        init(_ name: String, sequence: UInt64 = 1) throws {
            keys = try SigningKeyPair.generate()
            record = try PeerRecord.signed(
                name: name, addresses: ["127.0.0.1:1"], signing: keys, agreementKey: Array(repeating: 7, count: 32),
                now: sequence)
        }
    }

    let alice: Peer
    let bob: Peer
    var peers: [String: [String: JSONValue]] { ["alice": alice.record.document, "bob": bob.record.document] }

    init() throws {
        alice = try Peer("alice")
        bob = try Peer("bob")
    }

    func grant(views: UInt64, sequence: UInt64, signedBy keys: SigningKeyPair? = nil) throws -> ViewGrant {
        try ViewGrant(
            owner: "alice", image: "cat", recipient: "bob", views: views, digest: Array(repeating: 1, count: 32),
            sealedKey: views > 0 ? Array(repeating: 2, count: 80) : [], sequence: sequence
        ).signed(by: keys ?? alice.keys)
    }

    func request(_ sequence: UInt64, signedBy keys: SigningKeyPair? = nil) throws -> ViewRequest {
        try ViewRequest(owner: "alice", image: "cat", recipient: "bob", sequence: sequence).signed(by: keys ?? bob.keys)
    }

    func ledger(_ documents: Documents, _ id: String) -> GrantLedger {
        GrantLedger(peers: peers, stored: documents.byID[id])
    }

    /// Takes a view through the ledger and applies it; returns views left, or the refusal's reason.
    func view(_ sequence: UInt64, in documents: inout Documents) throws -> Result<UInt64, LedgerRefusal> {
        let id = ViewGrant.id(owner: "alice", image: "cat", recipient: "bob")
        let signed = try request(sequence)
        let taking: ViewTaking
        do {
            taking = try ledger(documents, id).view(signed)
        } catch {
            return .failure(error)
        }
        let write = try #require(taking.write)
        #expect(try documents.apply(write))
        return .success(documents.byID[id]?["remaining"]?.wholeNumberValue ?? 0)
    }

    @Test func registerIsTrustOnFirstUseWithRisingSequences() throws {
        var users = Documents()
        let first = try GrantLedger(stored: nil).register(alice.record)
        #expect(first.condition == nil)
        #expect(try users.apply(first))
        let newer = try PeerRecord.signed(
            name: "alice", addresses: ["127.0.0.1:2"], signing: alice.keys, agreementKey: alice.record.agreementKey,
            now: 2)
        #expect(try users.apply(try GrantLedger(stored: users.byID["alice"]).register(newer)))
        // The old record again: a replay.
        let replay = try #require(throwsRefusal { try GrantLedger(stored: users.byID["alice"]).register(alice.record) })
        #expect(replay.reason == .stale)
        // Another key for the same name.
        let thief = try Peer("alice", sequence: 9)
        let stolen = try #require(throwsRefusal { try GrantLedger(stored: users.byID["alice"]).register(thief.record) })
        #expect(stolen.reason == .unauthorized)
    }

    @Test func grantRevokeAndGrantAgain() throws {
        var permissions = Documents()
        let id = ViewGrant.id(owner: "alice", image: "cat", recipient: "bob")
        #expect(try permissions.apply(try ledger(permissions, id).grant(try grant(views: 2, sequence: 1))))
        #expect(permissions.byID[id]?["remaining"] == .number(2))
        #expect(try view(1, in: &permissions) == .success(1))
        // Revoked: no view is taken.
        #expect(try permissions.apply(try ledger(permissions, id).grant(try grant(views: 0, sequence: 2))))
        #expect(try view(2, in: &permissions).refusal?.reason == .unauthorized)
        // Granted again: views are back, and the last request taken still counts.
        #expect(try permissions.apply(try ledger(permissions, id).grant(try grant(views: 3, sequence: 3))))
        #expect(permissions.byID[id]?["lastRequest"] == .number(1))
        #expect(try view(1, in: &permissions).refusal?.reason == .stale)
        #expect(try view(2, in: &permissions) == .success(2))
    }

    @Test func replayedForgedAndUnknownGrantsAreRefused() throws {
        var permissions = Documents()
        let id = ViewGrant.id(owner: "alice", image: "cat", recipient: "bob")
        let first = try grant(views: 2, sequence: 5)
        #expect(try permissions.apply(try ledger(permissions, id).grant(first)))
        #expect(throwsRefusal { try ledger(permissions, id).grant(first) }?.reason == .stale)
        #expect(throwsRefusal { try ledger(permissions, id).grant(try grant(views: 9, sequence: 4)) }?.reason == .stale)
        let forged = try grant(views: 9, sequence: 6, signedBy: bob.keys)
        #expect(throwsRefusal { try ledger(permissions, id).grant(forged) }?.reason == .unauthorized)
        let unknownRecipient = GrantLedger(peers: ["alice": alice.record.document], stored: nil)
        #expect(throwsRefusal { try unknownRecipient.grant(first) }?.reason == .unauthorized)
        // A grant decided on a stale read loses its condition.
        let stale = try ledger(permissions, id).grant(try grant(views: 7, sequence: 6))
        #expect(try view(1, in: &permissions) == .success(1))
        #expect(try !permissions.apply(stale))
    }

    @Test func viewsCountToTheLimitAndAreRefusedAfter() throws {
        var permissions = Documents()
        let id = ViewGrant.id(owner: "alice", image: "cat", recipient: "bob")
        #expect(try view(1, in: &permissions).refusal?.reason == .unauthorized)
        #expect(try permissions.apply(try ledger(permissions, id).grant(try grant(views: 3, sequence: 1))))
        #expect(try view(1, in: &permissions) == .success(2))
        #expect(try view(1, in: &permissions).refusal?.reason == .stale)
        #expect(try view(2, in: &permissions) == .success(1))
        #expect(try view(5, in: &permissions) == .success(0))
        #expect(try view(6, in: &permissions).refusal?.reason == .unauthorized)
        #expect(permissions.byID[id]?["remaining"] == .number(0))
        let forged = try request(7, signedBy: alice.keys)
        #expect(throwsRefusal { try ledger(permissions, id).view(forged) }?.reason == .unauthorized)
    }

    @Test func twoViewsDecidedOnTheSameReadTakeOneView() throws {
        var permissions = Documents()
        let id = ViewGrant.id(owner: "alice", image: "cat", recipient: "bob")
        #expect(try permissions.apply(try ledger(permissions, id).grant(try grant(views: 1, sequence: 1))))
        let first = try #require(try ledger(permissions, id).view(try request(1)).write)
        let second = try #require(try ledger(permissions, id).view(try request(2)).write)
        #expect(try permissions.apply(first))
        #expect(try !permissions.apply(second))
        #expect(permissions.byID[id]?["remaining"] == .number(0))
    }

    @Test func aViewAlreadyTakenIsReleasedWithoutTakingAnother() throws {
        var permissions = Documents()
        let id = ViewGrant.id(owner: "alice", image: "cat", recipient: "bob")
        #expect(try permissions.apply(try ledger(permissions, id).grant(try grant(views: 2, sequence: 1))))
        #expect(try view(1, in: &permissions) == .success(1))
        let again = try ledger(permissions, id).view(try request(1), alreadyTaken: true)
        #expect(again.write == nil)
        #expect(again.remaining == 1)
        // Not once the owner revoked.
        #expect(try permissions.apply(try ledger(permissions, id).grant(try grant(views: 0, sequence: 2))))
        #expect(throwsRefusal { try ledger(permissions, id).view(try request(1), alreadyTaken: true) } != nil)
    }

    @Test func documentsWithRecentMarksStillWork() throws {
        var permissions = Documents()
        let id = ViewGrant.id(owner: "alice", image: "cat", recipient: "bob")
        var old = try grant(views: 2, sequence: 1).document.filter { $0.key != "_id" }
        old["remaining"] = .number(2)
        old["lastRequest"] = .number(0)
        old["recent"] = .array([.string("0/12345")])
        permissions.byID[id] = old
        #expect(try view(1, in: &permissions) == .success(1))
        #expect(try permissions.apply(try ledger(permissions, id).grant(try grant(views: 4, sequence: 2))))
        #expect(permissions.byID[id]?["recent"] == nil)
    }

    @Test func requestsAndCatalogNeedTheSignerAndRisingSequences() throws {
        var requests = Documents()
        let asked = AccessRequest(
            owner: "alice", image: "cat", requester: "bob", views: 2, state: .pending, sequence: 1)
        #expect(try requests.apply(try GrantLedger(peers: peers, stored: nil).post(try asked.signed(by: bob.keys))))
        let stored = GrantLedger(peers: peers, stored: requests.byID[asked.id])
        #expect(throwsRefusal { try stored.post(try asked.signed(by: bob.keys)) }?.reason == .stale)
        var answer = asked
        answer.state = .granted
        answer.sequence = 2
        #expect(throwsRefusal { try stored.post(try answer.signed(by: bob.keys)) }?.reason == .unauthorized)
        #expect(try requests.apply(try stored.post(try answer.signed(by: alice.keys))))
        #expect(requests.byID[asked.id]?["state"] == .string("granted"))
        let entry = CatalogEntry(owner: "alice", name: "cat", bytes: 10, width: 1, height: 1, sequence: 1)
        let nobody = GrantLedger(peers: [:], stored: nil)
        #expect(throwsRefusal { try nobody.publish(try entry.signed(by: alice.keys)) }?.reason == .unauthorized)
        #expect(try GrantLedger(peers: peers, stored: nil).publish(try entry.signed(by: alice.keys)).condition == nil)
    }
}

/// The refusal `body` throws, or nil when it decides a write.
private func throwsRefusal<T>(_ body: () throws -> T) -> LedgerRefusal? {
    do {
        _ = try body()
        return nil
    } catch let refusal as LedgerRefusal {
        return refusal
    } catch {
        Issue.record("not a refusal: \(error)")
        return nil
    }
}

extension Result where Failure == LedgerRefusal {
    fileprivate var refusal: LedgerRefusal? {
        if case .failure(let refusal) = self { return refusal }
        return nil
    }
}
