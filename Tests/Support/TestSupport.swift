import Distri

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
    public static var tls: ClientConfiguration { ClientConfiguration(tls: TestTLS.authority.clientTLS) }
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
