import DistriCore
import DistriIdentity

/// The cloud's one check of a delivery ticket, for the relay and the mailbox alike: the ticket's grant
/// in force (`stored`, the `permissions` document), signed by the owner's registered key (`owner`, the
/// `users` document), with views left and the same image digest.
enum TicketInForce {
    /// Throws `unauthorized`, in words, unless `ticket` names the grant in force.
    static func check(
        _ ticket: DeliveryTicket, owner: [String: JSONValue]?, stored: [String: JSONValue]?
    ) throws(ServiceError) {
        guard let owner, let record = try? PeerRecord(document: owner) else {
            throw ServiceError(.unauthorized, "'\(ticket.owner)' is not a registered peer")
        }
        let current = stored.flatMap { try? ViewGrant(document: $0.merging(["_id": .string(ticket.id)]) { a, _ in a }) }
        do {
            try ticket.check(inForce: current, ownerKey: record.signingKey)
        } catch {
            throw ServiceError(
                .unauthorized, "the cloud holds no grant in force for this image (\(ticket.id)): \(error)")
        }
    }
}
