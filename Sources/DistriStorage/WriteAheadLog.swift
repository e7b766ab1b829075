#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An append-only log of opaque records, each length-prefixed and checksummed (CRC-32C), made durable
/// with fdatasync. Not thread-safe: the owner serialises calls.
///
/// File layout: the 8-byte header `DSTRWAL1`, then records `[u32 length LE][u32 CRC-32C LE][payload]`, where the
/// checksum covers the 4 length bytes and then the payload (so a zero-filled tail never reads as empty records).
/// Recovery keeps the longest intact *prefix*: the first torn or corrupt record and everything after it are cut.
/// The file is locked (`flock`) while open, so a second `WriteAheadLog` on the same file fails instead of
/// interleaving writes.
public final class WriteAheadLog {
    /// The longest record payload accepted (64 MiB); a longer length field on disk is treated as corruption.
    package static let maxRecordLength = 64 << 20
    package static let header: [UInt8] = Array("DSTRWAL1".utf8)
    package static let recordHeaderSize = 8

    /// The log file's path.
    package let path: String
    private let directory: String
    private var fd: Int32 = -1
    /// Why calls throw once the file is closed.
    private var closedReason = "closed"
    private var size = 0
    /// The end of the last intact record once the file has been scanned; appends go there.
    private var validatedEnd: Int?
    /// Bytes appended and syncs made since this log was opened.
    public private(set) var counters = WriteAheadLogCounters()

    private var tempPath: String { path + ".tmp" }

    /// Opens (creating the directory and file if needed) `directory/name`.
    public init(directory: String, name: String = "replica.wal") throws(StorageError) {
        let directory = directory.isEmpty ? "." : directory
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw StorageError("\(path): invalid write-ahead log name \"\(name)\"")
        }
        self.directory = directory
        self.path = path
        try FileIO.createDirectories(directory)
        // A leftover from a replace that crashed before its rename; the log itself is still authoritative.
        if unlink(tempPath) != 0, errno != ENOENT {
            throw StorageError.system("unlink", tempPath, errno)
        }
        (fd, size) = try Self.openLog(path: path, directory: directory)
    }

    deinit { close() }

    /// Every intact record in order. A torn or corrupt tail (a crash mid-append, bad checksum, short
    /// length) is cut off (the file is truncated to the last intact record) and reported in `truncatedBytes`.
    /// The log is a prefix: a corrupt record in the middle cuts it and every record after it.
    public func recover() throws(StorageError) -> (records: [[UInt8]], truncatedBytes: Int) {
        try scan(collecting: true)
    }

    /// Appends records with one write and one fdatasync (group commit): when it returns, they are durable.
    /// Without a prior `recover()`, the log is checked (and a torn tail cut) first. If a write or sync fails the
    /// log is closed, since what reached the disk is unknown: reopen it and recover.
    public func append(_ records: [[UInt8]]) throws(StorageError) {
        try checkOpen()
        guard !records.isEmpty else { return }
        try append(try encode(records))
    }

    /// Appends the records of `batch` with one write and one fdatasync (group commit): when it returns,
    /// they are durable. As the form taking `[[UInt8]]`, but the records are framed already, in a buffer
    /// the caller reuses from one group to the next.
    public func append(_ batch: WriteAheadLogBatch) throws(StorageError) {
        try checkOpen()
        guard !batch.isEmpty else { return }
        if validatedEnd == nil { _ = try scan(collecting: false) }
        let end = validatedEnd ?? size
        let code = FileIO.writeAll(fd, batch.bytes, at: end)
        if code != 0 { throw fail(StorageError.system("write", path, code)) }
        counters.bytesAppended += UInt64(batch.bytes.count)
        if let code = timedSync({ fdatasync(fd) }) {
            throw fail(StorageError.system("fdatasync", path, code))
        }
        size = end + batch.bytes.count
        validatedEnd = size
    }

    /// Atomically replaces the whole log with `records` (write a temp file, fsync it, rename over, fsync the
    /// directory), used to compact the log into a snapshot. On failure before the rename the old log is intact.
    public func replace(with records: [[UInt8]]) throws(StorageError) {
        try checkOpen()
        try replace(with: try encode(records))
    }

    /// Atomically replaces the whole log with the records of `batch`, as the form taking `[[UInt8]]`.
    public func replace(with batch: WriteAheadLogBatch) throws(StorageError) {
        try checkOpen()
        let encoded = batch.bytes
        let tempPath = self.tempPath
        if unlink(tempPath) != 0, errno != ENOENT { throw StorageError.system("unlink", tempPath, errno) }
        let newFD = try FileIO.open(tempPath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644)
        func abandon(_ error: StorageError) -> StorageError {
            FileIO.close(newFD)
            _ = unlink(tempPath)
            return error
        }
        // Locked before it becomes visible as the log, so no other opener can slip in.
        if let code = FileIO.retryingEINTR({ flock(newFD, LOCK_EX | LOCK_NB) }) {
            throw abandon(StorageError.system("flock", tempPath, code))
        }
        var code = FileIO.writeAll(newFD, Self.header, at: 0)
        if code == 0 { code = FileIO.writeAll(newFD, encoded, at: Self.header.count) }
        if code != 0 { throw abandon(StorageError.system("write", tempPath, code)) }
        if let code = timedSync({ fsync(newFD) }) {
            throw abandon(StorageError.system("fsync", tempPath, code))
        }
        if rename(tempPath, path) != 0 {
            throw abandon(StorageError.system("rename to \(path)", tempPath, errno))
        }
        FileIO.close(fd)
        fd = newFD
        size = Self.header.count + encoded.count
        validatedEnd = size
        let start = ContinuousClock.now
        defer { counters.noteSync(since: start) }
        do {
            try FileIO.syncDirectory(directory)
        } catch {
            throw fail(error)
        }
    }

    /// Current size of the log file in bytes.
    public var sizeBytes: Int { size }

    /// Closes the file; further calls throw.
    public func close() {
        if fd >= 0 {
            FileIO.close(fd)
            fd = -1
        }
    }

    // MARK: - Internals

    /// Runs one sync call (retried after EINTR), counting it and the time it took.
    private func timedSync(_ call: () -> Int32) -> Int32? {
        let start = ContinuousClock.now
        defer { counters.noteSync(since: start) }
        return FileIO.retryingEINTR(call)
    }

    private func checkOpen() throws(StorageError) {
        if fd < 0 { throw StorageError("\(path): write-ahead log is \(closedReason)") }
    }

    /// Closes the log after a failure that leaves the file's contents uncertain, and returns `error`.
    private func fail(_ error: StorageError) -> StorageError {
        close()
        closedReason = "closed after an I/O failure (\(error.description)); reopen it and recover"
        return error
    }

    /// The framed bytes of `records`, or an error naming the first one that is too long.
    private func encode(_ records: [[UInt8]]) throws(StorageError) -> WriteAheadLogBatch {
        var total = 0
        for (index, record) in records.enumerated() {
            guard record.count <= Self.maxRecordLength else {
                throw StorageError(
                    "\(path): record \(index) is \(record.count) bytes, over the \(Self.maxRecordLength)-byte limit")
            }
            total += Self.recordHeaderSize + record.count
        }
        var batch = WriteAheadLogBatch(capacity: total)
        for record in records { try batch.append(record) }
        return batch
    }

    /// Reads the records after the header, cuts any torn or corrupt tail, and remembers where the log ends.
    private func scan(collecting: Bool) throws(StorageError) -> (records: [[UInt8]], truncatedBytes: Int) {
        try checkOpen()
        let fileSize = try FileIO.fileSize(fd, path)
        guard fileSize >= Self.header.count else {
            throw StorageError("\(path): file is \(fileSize) bytes, shorter than its header")
        }
        var reader = FileIO.Reader(fd: fd, path: path, offset: Self.header.count, end: fileSize)
        var records: [[UInt8]] = []
        var end = Self.header.count
        while let head = try reader.take(Self.recordHeaderSize) {
            let length = Self.littleEndian32(head, at: 0)
            guard length <= Self.maxRecordLength, let payload = try reader.take(Int(length)) else { break }
            let crc = CRC32C.update(CRC32C.update(0, head.prefix(4)), payload)
            guard crc == Self.littleEndian32(head, at: 4) else { break }
            if collecting { records.append(Array(payload)) }
            end += Self.recordHeaderSize + Int(length)
        }
        let truncated = fileSize - end
        if truncated > 0 {
            if let code = FileIO.retryingEINTR({ ftruncate(fd, off_t(end)) }) {
                throw StorageError.system("ftruncate", path, code)
            }
            if let code = timedSync({ fsync(fd) }) {
                throw fail(StorageError.system("fsync", path, code))
            }
        }
        size = end
        validatedEnd = end
        return (records, truncated)
    }

    private static func littleEndian32(_ bytes: ArraySlice<UInt8>, at offset: Int) -> UInt32 {
        let base = bytes.startIndex + offset
        return UInt32(bytes[base]) | UInt32(bytes[base + 1]) << 8 | UInt32(bytes[base + 2]) << 16
            | UInt32(bytes[base + 3]) << 24
    }

    /// Opens and locks the log, creating it (header only) if missing, and checks its header.
    private static func openLog(path: String, directory: String) throws(StorageError) -> (fd: Int32, size: Int) {
        for _ in 0..<3 {
            var created = false
            var fd = FileIO.openDescriptor(path, O_RDWR | O_CLOEXEC)
            if fd < 0, errno == ENOENT {
                fd = FileIO.openDescriptor(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644)
                if fd < 0, errno == EEXIST { continue }
                created = true
            }
            if fd < 0 { throw StorageError.system("open", path, errno) }
            do throws(StorageError) {
                if let code = FileIO.retryingEINTR({ flock(fd, LOCK_EX | LOCK_NB) }) {
                    if code == EAGAIN { throw StorageError("\(path): write-ahead log is already open elsewhere") }
                    throw StorageError.system("flock", path, code)
                }
                // A concurrent replace may have renamed a new file over the one just opened: use the new one.
                guard try FileIO.isSameFile(fd, path) else {
                    FileIO.close(fd)
                    continue
                }
                let size = try checkHeader(fd: fd, path: path, created: created, directory: directory)
                return (fd, size)
            } catch {
                FileIO.close(fd)
                throw error
            }
        }
        throw StorageError("\(path): the file kept changing while being opened")
    }

    /// Checks the header, writing it if the file is new or was cut short while being created. Returns the size.
    private static func checkHeader(fd: Int32, path: String, created: Bool, directory: String) throws(StorageError)
        -> Int
    {
        let size = try FileIO.fileSize(fd, path)
        var reader = FileIO.Reader(fd: fd, path: path, offset: 0, end: min(size, header.count))
        let existing = try reader.take(min(size, header.count)) ?? []
        if size >= header.count {
            guard existing.elementsEqual(header) else {
                throw StorageError("\(path): not a write-ahead log (bad header; expected \"DSTRWAL1\")")
            }
            return size
        }
        guard existing.elementsEqual(header.prefix(size)) else {
            throw StorageError("\(path): not a write-ahead log (bad header; expected \"DSTRWAL1\")")
        }
        let code = FileIO.writeAll(fd, header, at: 0)
        if code != 0 { throw StorageError.system("write", path, code) }
        if let code = FileIO.retryingEINTR({ fdatasync(fd) }) { throw StorageError.system("fdatasync", path, code) }
        if created || size == 0 { try FileIO.syncDirectory(directory) }
        return header.count
    }
}

/// Records framed for a ``WriteAheadLog`` (`[u32 length LE][u32 CRC-32C LE][payload]` each) in one
/// buffer, so that a group of appends is encoded once, straight into the bytes that go to the file, and
/// written with one call. Reusable: ``removeAll()`` keeps the buffer's capacity for the next group.
public struct WriteAheadLogBatch: Sendable {
    /// The framed records, as they go to the file.
    public private(set) var bytes: [UInt8] = []
    /// How many records the batch holds.
    public private(set) var count = 0

    /// An empty batch.
    public init() {}

    /// An empty batch with room for `capacity` bytes of framed records.
    public init(capacity: Int) { bytes.reserveCapacity(capacity) }

    /// True when the batch holds no record.
    public var isEmpty: Bool { count == 0 }

    /// The bytes the buffer can hold before it grows.
    public var capacity: Int { bytes.capacity }

    /// Appends one record whose payload `encode` appends to the buffer it is given; it must only append.
    /// A payload over the log's record limit (64 MiB) is taken out again, and the batch throws.
    public mutating func append(encoding encode: (inout [UInt8]) -> Void) throws(StorageError) {
        let start = bytes.count
        let header = WriteAheadLog.recordHeaderSize
        bytes.append(contentsOf: repeatElement(0, count: header))
        encode(&bytes)
        let length = bytes.count - start - header
        guard length <= WriteAheadLog.maxRecordLength else {
            bytes.removeSubrange(start...)
            throw StorageError(
                "a write-ahead log record of \(length) bytes is over the \(WriteAheadLog.maxRecordLength)-byte limit")
        }
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(length).littleEndian, toByteOffset: start, as: UInt32.self)
            let lengthBytes = UnsafeRawBufferPointer(rebasing: raw[start..<(start + 4)])
            let payload = UnsafeRawBufferPointer(rebasing: raw[(start + header)...])
            let crc = CRC32C.update(CRC32C.update(0, lengthBytes), payload)
            raw.storeBytes(of: crc.littleEndian, toByteOffset: start + 4, as: UInt32.self)
        }
        count += 1
    }

    /// Appends one record.
    public mutating func append(_ record: [UInt8]) throws(StorageError) {
        try append { $0.append(contentsOf: record) }
    }

    /// Removes every record, keeping the buffer's capacity.
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        count = 0
    }
}

/// What a ``WriteAheadLog`` wrote since it was opened, for a node's metrics.
public struct WriteAheadLogCounters: Sendable, Equatable {
    /// Bytes of framed records appended (compactions, which rewrite the log, not included).
    public var bytesAppended: UInt64 = 0
    /// Syncs of the log's file or directory (fdatasync after appends, fsync of compactions and
    /// truncations), failed ones included.
    public var syncs: UInt64 = 0
    /// Time spent in those syncs, on a monotonic clock, in nanoseconds.
    public var syncNanoseconds: UInt64 = 0

    /// All counters at zero.
    public init() {}

    mutating func noteSync(since start: ContinuousClock.Instant) {
        let elapsed = start.duration(to: .now).components
        syncs += 1
        syncNanoseconds +=
            UInt64(max(0, elapsed.seconds)) * 1_000_000_000 + UInt64(max(0, elapsed.attoseconds) / 1_000_000_000)
    }
}
