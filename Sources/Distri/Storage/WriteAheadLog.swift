#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A storage failure; the message names the file involved.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public var description: String

    init(_ description: String) { self.description = description }

    /// A failed system call on `path`, with the text of `code`.
    static func system(_ operation: String, _ path: String, _ code: Int32) -> StorageError {
        StorageError("\(path): \(operation) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}

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
    static let maxRecordLength = 64 << 20
    static let header: [UInt8] = Array("DSTRWAL1".utf8)
    static let recordHeaderSize = 8

    /// The log file's path.
    let path: String
    private let directory: String
    private var fd: Int32 = -1
    /// Why calls throw once the file is closed.
    private var closedReason = "closed"
    private var size = 0
    /// The end of the last intact record once the file has been scanned; appends go there.
    private var validatedEnd: Int?

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
        let encoded = try encode(records)
        if validatedEnd == nil { _ = try scan(collecting: false) }
        let end = validatedEnd ?? size
        let code = FileIO.writeAll(fd, encoded, at: end)
        if code != 0 { throw fail(StorageError.system("write", path, code)) }
        if let code = FileIO.retryingEINTR({ fdatasync(fd) }) {
            throw fail(StorageError.system("fdatasync", path, code))
        }
        size = end + encoded.count
        validatedEnd = size
    }

    /// Atomically replaces the whole log with `records` (write a temp file, fsync it, rename over, fsync the
    /// directory), used to compact the log into a snapshot. On failure before the rename the old log is intact.
    public func replace(with records: [[UInt8]]) throws(StorageError) {
        try checkOpen()
        let encoded = try encode(records)
        let tempPath = self.tempPath
        if unlink(tempPath) != 0, errno != ENOENT { throw StorageError.system("unlink", tempPath, errno) }
        let newFD = try FileIO.open(tempPath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644)
        func abandon(_ error: StorageError) -> StorageError {
            closeDescriptor(newFD)
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
        if let code = FileIO.retryingEINTR({ fsync(newFD) }) {
            throw abandon(StorageError.system("fsync", tempPath, code))
        }
        if rename(tempPath, path) != 0 {
            throw abandon(StorageError.system("rename to \(path)", tempPath, errno))
        }
        closeDescriptor(fd)
        fd = newFD
        size = Self.header.count + encoded.count
        validatedEnd = size
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
            closeDescriptor(fd)
            fd = -1
        }
    }

    // MARK: - Internals

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
    private func encode(_ records: [[UInt8]]) throws(StorageError) -> [UInt8] {
        var total = 0
        for (index, record) in records.enumerated() {
            guard record.count <= Self.maxRecordLength else {
                throw StorageError(
                    "\(path): record \(index) is \(record.count) bytes, over the \(Self.maxRecordLength)-byte limit")
            }
            total += Self.recordHeaderSize + record.count
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(total)
        for record in records {
            let start = bytes.count
            Self.appendLittleEndian32(UInt32(record.count), to: &bytes)
            let crc = CRC32C.update(CRC32C.update(0, bytes[start...]), record)
            Self.appendLittleEndian32(crc, to: &bytes)
            bytes.append(contentsOf: record)
        }
        return bytes
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
            if let code = FileIO.retryingEINTR({ fsync(fd) }) {
                throw fail(StorageError.system("fsync", path, code))
            }
        }
        size = end
        validatedEnd = end
        return (records, truncated)
    }

    private static func appendLittleEndian32(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
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
            var fd = openDescriptor(path, O_RDWR | O_CLOEXEC)
            if fd < 0, errno == ENOENT {
                fd = openDescriptor(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(0o644))
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
                    closeDescriptor(fd)
                    continue
                }
                let size = try checkHeader(fd: fd, path: path, created: created, directory: directory)
                return (fd, size)
            } catch {
                closeDescriptor(fd)
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

/// `open(2)` without EINTR handling (callers check `errno`), callable where a member named `open` shadows it.
private func openDescriptor(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
    open(path, flags, mode)
}

/// `close(2)`, callable where a member named `close` shadows it. Never retried: Linux frees the fd even on EINTR.
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}

/// Thin wrappers over the POSIX calls the log uses, handling EINTR and partial transfers.
enum FileIO {
    /// Runs `call` until it does not fail with EINTR; returns `errno` if it failed, nil if it succeeded.
    static func retryingEINTR(_ call: () -> Int32) -> Int32? {
        while true {
            if call() == 0 { return nil }
            if errno != EINTR { return errno }
        }
    }

    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(StorageError) -> Int32 {
        while true {
            let fd = openDescriptor(path, flags, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw StorageError.system("open", path, errno) }
        }
    }

    /// Writes all of `bytes` at `offset`; returns 0 or the `errno` of the failure.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int) -> Int32 {
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let written = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if written == 0 { return EIO }
                done += written
            }
            return 0
        }
    }

    static func fileSize(_ fd: Int32, _ path: String) throws(StorageError) -> Int {
        var info = stat()
        if fstat(fd, &info) != 0 { throw StorageError.system("fstat", path, errno) }
        return Int(info.st_size)
    }

    /// Whether `path` still names the file open as `fd`.
    static func isSameFile(_ fd: Int32, _ path: String) throws(StorageError) -> Bool {
        var opened = stat()
        var named = stat()
        if fstat(fd, &opened) != 0 { throw StorageError.system("fstat", path, errno) }
        if stat(path, &named) != 0 {
            if errno == ENOENT { return false }
            throw StorageError.system("stat", path, errno)
        }
        return opened.st_dev == named.st_dev && opened.st_ino == named.st_ino
    }

    /// Makes the directory's entries (a created or renamed file) durable.
    static func syncDirectory(_ path: String) throws(StorageError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { closeDescriptor(fd) }
        if let code = retryingEINTR({ fsync(fd) }) { throw StorageError.system("fsync", path, code) }
    }

    /// `mkdir -p`, syncing each parent whose entries change.
    static func createDirectories(_ path: String) throws(StorageError) {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw StorageError("\(path): not a directory") }
            return
        }
        let parent = parentDirectory(of: path)
        if parent != path { try createDirectories(parent) }
        if mkdir(path, 0o755) != 0 {
            if errno == EEXIST { return }
            throw StorageError.system("mkdir", path, errno)
        }
        try syncDirectory(parent)
    }

    static func parentDirectory(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    /// Buffered sequential reads with `pread`, between a start offset and `end`.
    struct Reader {
        let fd: Int32
        let path: String
        /// Where the next `pread` reads.
        var offset: Int
        let end: Int
        private var buffer: [UInt8] = []
        private var start = 0

        init(fd: Int32, path: String, offset: Int, end: Int) {
            self.fd = fd
            self.path = path
            self.offset = offset
            self.end = end
        }

        /// The next `count` bytes, or nil if the file ends first.
        mutating func take(_ count: Int) throws(StorageError) -> ArraySlice<UInt8>? {
            if buffer.count - start < count {
                buffer.removeSubrange(0..<start)
                start = 0
                let wanted = min(max(count - buffer.count, 1 << 20), end - offset)
                if wanted > 0 {
                    let old = buffer.count
                    buffer.append(contentsOf: repeatElement(0, count: wanted))
                    let (got, code) = buffer.withUnsafeMutableBytes { raw -> (Int, Int32) in
                        var got = 0
                        while got < wanted {
                            let read = pread(fd, raw.baseAddress! + old + got, wanted - got, off_t(offset + got))
                            if read < 0 {
                                if errno == EINTR { continue }
                                return (got, errno)
                            }
                            if read == 0 { break }
                            got += read
                        }
                        return (got, 0)
                    }
                    if code != 0 { throw StorageError.system("read", path, code) }
                    buffer.removeLast(wanted - got)
                    offset += got
                }
                if buffer.count < count { return nil }
            }
            defer { start += count }
            return buffer[start..<(start + count)]
        }
    }
}
