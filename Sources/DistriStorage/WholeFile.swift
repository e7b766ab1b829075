#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Files written whole: a temporary file created with its final mode (never through a symbolic
/// link, so no moment where others may read a key), fsynced, renamed over the target, and the
/// directory synced, so a crash leaves the old file or the new one.
public enum WholeFile {
    /// Writes `bytes` to `path` with `mode`; with `overwrite` false, fails when `path` exists.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t, overwrite: Bool = true)
        throws(StorageError)
    {
        if !overwrite, access(path, F_OK) == 0 { throw StorageError("\(path) already exists") }
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try FileIO.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode: mode)
        // The mode given to open is masked by the umask: set it exactly.
        var failure: (String, Int32)? = fchmod(fd, mode) == 0 ? nil : ("fchmod", errno)
        if failure == nil, case let code = FileIO.writeAll(fd, bytes, at: 0), code != 0 { failure = ("write", code) }
        if failure == nil, let code = FileIO.sync(fd) { failure = ("fsync", code) }
        FileIO.close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = ("rename", errno) }
        if let (operation, code) = failure {
            unlink(temporary)
            throw StorageError.system(operation, path, code)
        }
        try FileIO.syncDirectory(FileIO.parentDirectory(of: path))
    }
}
