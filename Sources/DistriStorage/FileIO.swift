#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The project's one helper for POSIX file IO (the write-ahead log, ``WholeFile``, the peer's secure
/// files): `open`, positioned and sequential writes, `fsync`, directory syncs and buffered reads, each
/// retried after EINTR and finishing partial transfers. Calls that can fail return the `errno` (or
/// throw a ``StorageError`` naming the file), so callers choose their own error type.
public enum FileIO {
    /// Runs `call` until it does not fail with EINTR; returns `errno` if it failed, nil if it succeeded.
    public static func retryingEINTR(_ call: () -> Int32) -> Int32? {
        while true {
            if call() == 0 { return nil }
            if errno != EINTR { return errno }
        }
    }

    /// `open(2)` retried after EINTR: the descriptor, or -1 with `errno` set (for callers that branch on
    /// ENOENT or EEXIST).
    public static func openDescriptor(_ path: String, _ flags: Int32, mode: mode_t = 0) -> Int32 {
        while true {
            let fd = posixOpen(path, flags, mode)
            if fd >= 0 || errno != EINTR { return fd }
        }
    }

    /// `open(2)` retried after EINTR; throws a ``StorageError`` naming `path`.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(StorageError) -> Int32 {
        let fd = openDescriptor(path, flags, mode: mode)
        if fd < 0 { throw StorageError.system("open", path, errno) }
        return fd
    }

    /// `close(2)`. Never retried: Linux frees the descriptor even on EINTR.
    public static func close(_ fd: Int32) {
        _ = posixClose(fd)
    }

    /// `fsync(2)` retried after EINTR; returns nil or the `errno` of the failure.
    public static func sync(_ fd: Int32) -> Int32? {
        retryingEINTR { fsync(fd) }
    }

    /// Writes all of `bytes` at the file's current position (or its end, for O_APPEND); returns 0 or the
    /// `errno` of the failure.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32 {
        writeAll(bytes) { pointer, count, _ in posixWrite(fd, pointer, count) }
    }

    /// Writes all of `bytes` at `offset`; returns 0 or the `errno` of the failure.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int) -> Int32 {
        writeAll(bytes) { pwrite(fd, $0, $1, off_t(offset + $2)) }
    }

    /// Calls `write(pointer, count, done)` until every byte is written, retrying after EINTR.
    private static func writeAll(_ bytes: [UInt8], _ write: (UnsafeRawPointer, Int, Int) -> Int) -> Int32 {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return 0 }
            var done = 0
            // Bounded: each pass writes at least one byte, fails, or retries an interrupted call.
            while done < raw.count {
                let written = write(base + done, raw.count - done, done)
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

    package static func fileSize(_ fd: Int32, _ path: String) throws(StorageError) -> Int {
        var info = stat()
        if fstat(fd, &info) != 0 { throw StorageError.system("fstat", path, errno) }
        return Int(info.st_size)
    }

    /// Whether `path` still names the file open as `fd`.
    package static func isSameFile(_ fd: Int32, _ path: String) throws(StorageError) -> Bool {
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
    package static func syncDirectory(_ path: String) throws(StorageError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(fd) }
        if let code = sync(fd) { throw StorageError.system("fsync", path, code) }
    }

    /// `mkdir -p`, syncing each parent whose entries change.
    package static func createDirectories(_ path: String) throws(StorageError) {
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

    package static func parentDirectory(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    /// Buffered sequential reads with `pread`, between a start offset and `end`.
    package struct Reader {
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

/// The C `open`, out of reach of ``FileIO/open(_:_:mode:)``'s name.
private func posixOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}

/// The C `close`, out of reach of ``FileIO/close(_:)``'s name.
private func posixClose(_ fd: Int32) -> Int32 {
    close(fd)
}

/// The C `write`, out of reach of the `write` closure's name.
private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}
