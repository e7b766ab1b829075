import Distri
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Files only their user may read: directories 0700, files 0600, written whole (temporary file,
/// fsync, rename), never through a symbolic link.
public enum SecureFiles {
    /// Largest file read back (keys, records, images).
    public static let maxReadBytes = 64 << 20
    /// Largest sealed image read back to be sent (a streamed file's cover: 1 GiB of file at 8 bits per
    /// channel takes about 1.15 GiB). The sender holds it whole while it sends.
    public static let maxSealedImageBytes = 3 << 29

    /// Creates `path` (and missing parents) with mode 0700, or sets an existing directory to 0700.
    public static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw PeerError("cannot create directory \(path): \(error.localizedDescription)")
        }
        guard chmod(path, 0o700) == 0 else { throw PeerError("cannot set 0700 on \(path): \(errnoText())") }
    }

    /// Writes `bytes` to `path` with mode 0600, replacing it atomically (`WholeFile`). With
    /// `overwrite` false, fails when `path` exists.
    public static func write(_ bytes: [UInt8], to path: String, overwrite: Bool = true) throws {
        if !overwrite, exists(path) { throw PeerError("\(path) already exists") }
        do {
            try WholeFile.write(bytes, to: path, mode: 0o600, overwrite: overwrite)
        } catch {
            throw PeerError("cannot write \(path): \(error)")
        }
    }

    /// Appends `bytes` to `path` (created 0600 when missing), and syncs it unless `sync` is false
    /// (a partial transfer, checked against its digest before it is used, is synced once at the end).
    public static func append(_ bytes: [UInt8], to path: String, sync: Bool = true) throws {
        let fd = try openFile(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
        defer { FileIO.close(fd) }
        var code = FileIO.writeAll(fd, bytes)
        if code == 0, sync { code = FileIO.sync(fd) ?? 0 }
        guard code == 0 else { throw PeerError("cannot append to \(path): \(String(cString: strerror(code)))") }
    }

    /// Syncs the file `path` to disk.
    public static func sync(_ path: String) throws {
        let fd = try openFile(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        defer { FileIO.close(fd) }
        if let code = FileIO.sync(fd) { throw PeerError("cannot sync \(path): \(String(cString: strerror(code)))") }
    }

    /// Opens `path` with `flags` (mode 0600 when created), as a ``PeerError`` naming it on failure.
    private static func openFile(_ path: String, _ flags: Int32) throws -> Int32 {
        let fd = FileIO.openDescriptor(path, flags, mode: 0o600)
        guard fd >= 0 else { throw PeerError("cannot open \(path): \(errnoText())") }
        return fd
    }

    /// The size of the regular file `path` in bytes, nil when there is none.
    public static func size(_ path: String) -> Int? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    /// Reads `path` (at most `limit` bytes), refusing a file others may read when `private` (as ssh does
    /// with keys).
    public static func read(_ path: String, private: Bool = false, limit: Int = maxReadBytes) throws -> [UInt8] {
        // Non-blocking: a FIFO in its place is refused below, not waited on.
        let fd = FileIO.openDescriptor(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ELOOP { throw PeerError("\(path) is not a regular file") }
            throw PeerError("cannot read \(path): \(errnoText())")
        }
        defer { FileIO.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw PeerError("cannot read \(path): \(errnoText())") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw PeerError("\(path) is not a regular file") }
        if `private`, info.st_mode & 0o077 != 0 {
            throw PeerError(
                "\(path) may be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 600 \(path)"
            )
        }
        guard Int(info.st_size) <= limit else {
            throw PeerError("\(path) has \(info.st_size) bytes; the limit is \(limit)")
        }
        // Straight into the array (one copy), up to the size it had when opened.
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: Int(info.st_size)) { buffer, count in
            count = 0
            // Bounded by the size: each pass reads at least one byte, ends, or fails.
            while let base = buffer.baseAddress, count < buffer.count {
                let read = readDescriptor(fd, base + count, buffer.count - count)
                if read < 0, errno == EINTR { continue }
                if read < 0 { failure = errno }
                if read <= 0 { break }
                count += read
            }
        }
        guard failure == 0 else { throw PeerError("cannot read \(path): \(String(cString: strerror(failure)))") }
        return bytes
    }

    /// Whether anything exists at `path` (a symbolic link is not followed).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// The permission bits of `path` (for checks and tests).
    public static func mode(_ path: String) -> UInt32? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return UInt32(info.st_mode & 0o777)
    }

    /// Runs `body` holding an exclusive `flock` on `path` (created 0600 if missing): processes of the
    /// same user that use the same lock file take turns. Waits for the lock at most `timeout` seconds.
    public static func withLock<T>(_ path: String, timeout: Double = 10, _ body: () throws -> T) throws -> T {
        let fd = FileIO.openDescriptor(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode: 0o600)
        guard fd >= 0 else { throw PeerError("cannot open the lock \(path): \(errnoText())") }
        defer { FileIO.close(fd) }
        let start = Date()
        // Bounded in time: polls a non-blocking lock every 10 ms until `timeout`.
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, Date().timeIntervalSince(start) < timeout else {
                throw PeerError("cannot lock \(path): \(errnoText())")
            }
            usleep(10_000)
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// `read(2)` (a name `SecureFiles.read` does not hide).
private func readDescriptor(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
        Glibc.read(fd, buffer, count)
    #elseif canImport(Musl)
        Musl.read(fd, buffer, count)
    #else
        Darwin.read(fd, buffer, count)
    #endif
}
