import Distri
import Foundation

/// The tests' cluster authority, one per test process: every test node gets a certificate from it,
/// and test clients trust it.
public enum TestTLS {
    public static let authority: ThrowawayAuthority = {
        do {
            return try ThrowawayAuthority()
        } catch {
            fatalError("cannot make the tests' certificate authority: \(error)")
        }
    }()
}

extension ClientConfiguration {
    /// The default settings, over TLS trusting ``TestTLS/authority``.
    /// Pinned to the addresses given (no membership discovery), as the tests written before the client
    /// learnt the cloud mean: "this node", "these nodes". ``discovering`` learns the cloud.
    public static var tls: ClientConfiguration {
        ClientConfiguration(tls: TestTLS.authority.clientTLS, membershipRefresh: nil)
    }

    /// TLS trusting the test authority, learning the cloud's membership every `refreshMillis`.
    public static func discovering(refreshMillis: Int64 = 5000) -> ClientConfiguration {
        ClientConfiguration(tls: TestTLS.authority.clientTLS, membershipRefresh: .milliseconds(refreshMillis))
    }
}

/// The remote error code of a failed call (nil when it did not fail with one).
public func remoteCode(_ body: () async throws -> Void) async -> ErrorCode? {
    do {
        try await body()
        return nil
    } catch let error as ClientError {
        return error.remoteCode
    } catch {
        return nil
    }
}

/// Checks `condition` every few milliseconds (bounded by `timeout`) until it holds, and says whether
/// it did: for state that changes without an event to await.
public func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    await eventuallyAsync(timeout: timeout) { condition() }
}

/// ``eventually(timeout:_:)`` for a condition that must await.
public func eventuallyAsync(timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if await condition() { return true }
        await Task.yield()
        try? await Task.sleep(for: .milliseconds(2))
    }
    return await condition()
}

/// A fresh directory under the system's temporary directory, for one test: `remove()` deletes it.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String) {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
