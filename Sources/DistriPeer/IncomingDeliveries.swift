import Distri
import DistriIdentity
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The transfers a peer is receiving, each with its partial file held open, the bytes it holds and
/// the SHA-256 of those bytes so far: a chunk is written once and hashed from the same memory as it
/// is written, so the whole file is checked against the grant's digest without being read back, and a
/// chunk neither opens, locks nor looks up the file by name.
///
/// - A transfer is opened at its first chunk in this process (`open(_:)`); the bytes its partial
///   file holds already (a transfer cut before this daemon restarted) are read and hashed once.
/// - Chunks are appended in order under the transfer's lock and the home's deliveries `flock` (other
///   processes of the home take turns, as before); before each, `fstat` checks that the file is still
///   linked and holds exactly what was hashed (otherwise it is hashed again from the file).
/// - Every `syncInterval` bytes a sync of the file starts on NIO's blocking-IO thread pool, beside
///   the transfer, so a crash loses a bounded part of a long transfer and the sync at the end, before
///   the file takes its place, has little left to write.
/// - At most `maxOpen` transfers are held open; the one used least recently is closed (its file
///   stays, and its next chunk opens it again).
final class IncomingDeliveries: Sendable {
    /// Transfers held open at once.
    static let maxOpen = 32
    /// Bytes appended between two syncs of a partial file.
    static let syncInterval = 8 << 20

    /// One transfer's partial file and what was written to it.
    final class Transfer: Sendable {
        /// The partial file's path.
        let partial: String
        fileprivate let state: NIOLockedValueBox<State>

        fileprivate init(partial: String, state: State) {
            self.partial = partial
            self.state = NIOLockedValueBox(state)
        }

        /// Bytes appended so far.
        var held: Int { state.withLockedValue { $0.held } }
    }

    fileprivate struct State {
        /// The open descriptor; -1 once closed.
        var fd: Int32
        var held: Int
        var hasher: StreamingSHA256
        var unsynced = 0
        var syncing = false
        var finishing = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// What an append did.
    enum Appended: Equatable {
        /// The transfer holds this many bytes (the chunk was written if it continued them).
        case held(Int)
        /// The transfer was closed meanwhile (too many open): open it again.
        case closed
        /// Its file is gone (completed or discarded by another call).
        case gone
    }

    /// What the end of a transfer found.
    enum Sealed {
        /// The file holds `total` bytes matching the digest, synced: ready to take its place.
        case ready
        /// The bytes do not match the digest (or their count differs).
        case mismatch
        /// Another call is finishing it: wait (`waitFinished(_:)`), then look again.
        case finishing
        /// Closed or gone meanwhile.
        case gone
    }

    /// The open transfers and when each was last used. Lock order: the registry's lock is never taken
    /// while a transfer's is held.
    private struct Registry {
        var open: [String: (transfer: Transfer, used: UInt64)] = [:]
        var clock: UInt64 = 0
    }

    private let registry = NIOLockedValueBox(Registry())
    private let pool: NIOThreadPool

    init(pool: NIOThreadPool = .singleton) {
        self.pool = pool
    }

    deinit {
        for (_, open) in registry.withLockedValue({ $0.open }) { Self.closeUnlessFinishing(open.transfer) }
    }

    /// The transfer of `partial`, opened from its file (whose bytes are hashed) unless this process
    /// holds it open; nil when there is no partial file.
    func open(_ partial: String) throws -> Transfer? {
        let (transfer, evicted) = try registry.withLockedValue { registry throws -> (Transfer?, [Transfer]) in
            registry.clock += 1
            if let open = registry.open[partial] {
                registry.open[partial]?.used = registry.clock
                return (open.transfer, [])
            }
            // Opened under the registry's lock, so that the chunks of one transfer arriving together
            // open it once.
            let fd = Self.openDescriptor(partial)
            guard fd >= 0 else {
                if errno == ENOENT { return (nil, []) }
                throw PeerError("cannot open \(partial): \(SecureFiles.errnoText())")
            }
            var hasher = StreamingSHA256()
            guard let held = Self.hash(fd, into: &hasher) else {
                FileIO.close(fd)
                throw PeerError("cannot read \(partial): \(SecureFiles.errnoText())")
            }
            let transfer = Transfer(partial: partial, state: State(fd: fd, held: held, hasher: hasher))
            registry.open[partial] = (transfer, registry.clock)
            var evicted: [Transfer] = []
            // Bounded: each pass removes one entry.
            while registry.open.count > Self.maxOpen,
                let oldest = registry.open.filter({ $0.key != partial }).min(by: { $0.value.used < $1.value.used })
            {
                registry.open[oldest.key] = nil
                evicted.append(oldest.value.transfer)
            }
            return (transfer, evicted)
        }
        for transfer in evicted { Self.closeUnlessFinishing(transfer) }
        return transfer
    }

    /// Appends `chunk` when it starts at what the transfer holds (and fits in `total`), holding the
    /// `flock` on `lock` (other processes of the same home take turns); answers what the transfer
    /// holds then.
    func append(_ transfer: Transfer, offset: Int, chunk: ByteBuffer, total: Int, lock: String) throws -> Appended {
        let (appended, sync, failure) = try transfer.state.withLockedValue { state in
            try SecureFiles.withLock(lock) { Self.append(&state, offset: offset, chunk: chunk, total: total) }
        }
        if appended == .gone || failure != 0 { forget(transfer) }
        if failure != 0 {
            throw PeerError("cannot append to \(transfer.partial): \(String(cString: strerror(failure)))")
        }
        if let sync { syncInBackground(transfer, fd: sync) }
        return appended
    }

    /// The append itself, under both locks: what the transfer holds, a descriptor to sync in the
    /// background (when one is due), and the `errno` of a failed write (0: none).
    private static func append(_ state: inout State, offset: Int, chunk: ByteBuffer, total: Int)
        -> (Appended, Int32?, Int32)
    {
        guard state.fd >= 0 else { return (.closed, nil, 0) }
        guard Self.check(&state) else {
            Self.close(&state)
            return (.gone, nil, 0)
        }
        guard offset == state.held, !state.finishing, chunk.readableBytes > 0,
            chunk.readableBytes <= total - state.held
        else { return (.held(state.held), nil, 0) }
        let fd = state.fd
        let code = chunk.withUnsafeReadableBytes { bytes -> Int32 in
            let code = Self.writeAll(fd, bytes)
            if code == 0 { state.hasher.update(bytes) }
            return code
        }
        guard code == 0 else {
            // What reached the file is unknown: the transfer opens again from the file.
            Self.close(&state)
            return (.closed, nil, code)
        }
        state.held += chunk.readableBytes
        state.unsynced += chunk.readableBytes
        guard state.unsynced >= Self.syncInterval, !state.syncing else { return (.held(state.held), nil, 0) }
        // A descriptor of its own for the sync, so that closing the transfer never races it.
        let copy = dup(state.fd)
        guard copy >= 0 else { return (.held(state.held), nil, 0) }
        state.unsynced = 0
        state.syncing = true
        return (.held(state.held), copy, 0)
    }

    /// At the end of a transfer of `total` bytes: checks the bytes against `digest` and syncs the file.
    /// `.ready` leaves the transfer finishing until `finished(_:)` or `failed(_:)`.
    func seal(_ transfer: Transfer, total: Int, digest: [UInt8]) -> Sealed {
        let (sealed, fd) = transfer.state.withLockedValue { state -> (Sealed, Int32) in
            guard state.fd >= 0 else { return (.gone, -1) }
            guard !state.finishing else { return (.finishing, -1) }
            guard Self.check(&state) else {
                Self.close(&state)
                return (.gone, -1)
            }
            guard state.held == total, state.hasher.finalize() == digest else { return (.mismatch, -1) }
            state.finishing = true
            return (.ready, state.fd)
        }
        guard case .ready = sealed else {
            if case .gone = sealed { forget(transfer) }
            return sealed
        }
        // Finishing: nobody closes the descriptor meanwhile.
        if FileIO.sync(fd) != nil {
            failed(transfer)
            return .gone
        }
        return .ready
    }

    /// The transfer's file took its place or was removed: closes it and wakes the calls waiting.
    func finished(_ transfer: Transfer) {
        forget(transfer)
        let waiters = transfer.state.withLockedValue { state in
            Self.close(&state)
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Finishing failed (the grant is not in force, or the sync failed): the transfer stays, and a
    /// later call may finish it.
    func failed(_ transfer: Transfer) {
        let waiters = transfer.state.withLockedValue { state in
            state.finishing = false
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until another call finishing `transfer` has finished or failed.
    func waitFinished(_ transfer: Transfer) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waits = transfer.state.withLockedValue { state in
                guard state.finishing else { return false }
                state.waiters.append(continuation)
                return true
            }
            if !waits { continuation.resume() }
        }
    }

    // MARK: Files

    private func syncInBackground(_ transfer: Transfer, fd: Int32) {
        pool.submit { poolState in
            if poolState == .active { _ = fdatasync(fd) }
            FileIO.close(fd)
            transfer.state.withLockedValue { $0.syncing = false }
        }
    }

    /// Removes `transfer` from the open ones (when it is still the one open for its file).
    private func forget(_ transfer: Transfer) {
        registry.withLockedValue { registry in
            if registry.open[transfer.partial]?.transfer === transfer { registry.open[transfer.partial] = nil }
        }
    }

    /// Closes the file unless a call is finishing it.
    private static func closeUnlessFinishing(_ transfer: Transfer) {
        transfer.state.withLockedValue { state in
            guard !state.finishing else { return }
            close(&state)
        }
    }

    private static func close(_ state: inout State) {
        if state.fd >= 0 { FileIO.close(state.fd) }
        state.fd = -1
        state.finishing = false
    }

    /// Whether the open file is still linked and holds what was hashed; hashes it again from the file
    /// when its size differs (another writer). False when it is gone or cannot be read.
    private static func check(_ state: inout State) -> Bool {
        var info = stat()
        guard fstat(state.fd, &info) == 0, info.st_nlink > 0 else { return false }
        guard Int(info.st_size) != state.held else { return true }
        var hasher = StreamingSHA256()
        guard let held = hash(state.fd, into: &hasher) else { return false }
        state.hasher = hasher
        state.held = held
        return true
    }

    private static func openDescriptor(_ path: String) -> Int32 {
        // Bounded: retried only after EINTR.
        while true {
            let fd = FileIO.openDescriptor(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
            if fd >= 0 || errno != EINTR { return fd }
        }
    }

    /// Hashes the whole file open as `fd` (1 MiB at a time); its size, or nil when it cannot be read.
    private static func hash(_ fd: Int32, into hasher: inout StreamingSHA256) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        // Bounded by the file's length: each pass reads at least one byte or ends.
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return offset }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            offset += count
        }
    }

    /// Writes all of `bytes` at the end of the file; 0 or the `errno` of the failure.
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        guard let base = bytes.baseAddress else { return 0 }
        var done = 0
        // Bounded: each pass writes at least one byte, fails, or retries an interrupted call.
        while done < bytes.count {
            let written = write(fd, base + done, bytes.count - done)
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
