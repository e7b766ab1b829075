/// Storage a collection drop let go of: the documents and change-log entries it removed. Freeing a
/// big collection's documents takes long (about a second for a few hundred thousand replica copies
/// on this machine), so the engine hands this to its shell, which frees it off the event loop.
/// Holding it changes nothing else.
public struct ReleasedMemory: Sendable {
    var documents: [[String: ReplicatedDocument]] = []
    var logTables: [[String?: ChangeLog.Entry]] = []

    /// True when there is nothing to free.
    public var isEmpty: Bool { documents.isEmpty && logTables.isEmpty }

    /// Documents held (including any the drop kept), for tests and logs.
    public var documentCount: Int { documents.reduce(0) { $0 + $1.count } }
}

extension ReplicaEngine {
    /// Takes the storage that drops let go of since the last call (or tick), for the caller to free
    /// where it does not hold up requests.
    public mutating func takeReleased() -> ReleasedMemory {
        defer { released = ReleasedMemory() }
        return released
    }
}
