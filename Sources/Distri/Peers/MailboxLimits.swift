/// How much the cloud's mailbox holds for offline recipients, and for how long
/// (``CloudNodeConfiguration/mailbox``; see ``MailboxServices``). Every node of a cloud should hold
/// the same limits: each node checks them against the entries the DB holds, whoever deposited them.
///
/// Quotas count an entry's whole size (`total`) from its first chunk, so a deposit either fits or is
/// refused before anything is kept. The defaults:
///
/// | limit | default |
/// |-------|---------|
/// | ``perRecipientBytes`` | 64 MiB waiting for one recipient |
/// | ``perSenderBytes`` | 64 MiB deposited by one sender, all recipients together |
/// | ``totalBytes`` | 256 MiB in the whole cloud |
/// | ``expiryMillis`` | 7 days from the first chunk |
/// | ``maxChunkBytes`` | 512 KiB per `MailboxPut` |
/// | ``minChunkBytes`` | 64 KiB per chunk, except the one that completes an entry |
/// | ``maxEntriesPerRecipient`` | 256 |
/// | ``maxEntries`` | 4,096 in the whole cloud |
/// | ``sweepIntervalMillis`` | each node sweeps expired entries every minute |
/// | ``maxSweepDeletes`` | 512 documents deleted per sweep |
public struct MailboxLimits: Sendable, Equatable {
    /// Bytes waiting for one recipient. Default 64 MiB; also the largest image a mailbox takes.
    public var perRecipientBytes: Int = 64 << 20
    /// Bytes one sender (a grant's owner) has waiting, for all recipients together. Default 64 MiB.
    public var perSenderBytes: Int = 64 << 20
    /// Bytes waiting in the whole cloud. Default 256 MiB.
    public var totalBytes: Int = 256 << 20
    /// How long an entry is kept from its first chunk, complete or not. Default 7 days.
    public var expiryMillis: UInt64 = 7 * 24 * 3_600_000
    /// Largest chunk one `MailboxPut` carries (a chunk is stored as one document, so it is also held
    /// below the DB's document size limit). Default 512 KiB.
    public var maxChunkBytes: Int = 512 << 10
    /// Smallest chunk, except the one that completes an entry: bounds the documents one entry makes.
    /// Default 64 KiB.
    public var minChunkBytes: Int = 64 << 10
    /// Entries waiting for one recipient (each deposit of a grant is one). Default 256.
    public var maxEntriesPerRecipient: Int = 256
    /// Entries in the whole cloud. Default 4,096.
    public var maxEntries: Int = 4_096
    /// How often each node deletes expired entries from its replica. Default 60 s.
    public var sweepIntervalMillis: UInt64 = 60_000
    /// Most documents one sweep deletes; the rest wait for the next. Default 512.
    public var maxSweepDeletes: Int = 512

    /// The defaults of the table above; set fields to change them.
    public init() {}
}
