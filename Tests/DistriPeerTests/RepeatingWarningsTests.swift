import Logging
import Synchronization
import Testing

@testable import DistriPeer

/// Log lines a test collects.
private final class CollectedLog: Sendable {
    let lines = Mutex<[(Logger.Level, String)]>([])

    var logger: Logger {
        Logger(label: "test") { _ in CollectingHandler(log: self) }
    }

    private struct CollectingHandler: LogHandler {
        let log: CollectedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let error = event.metadata?["error"].map { ": \($0)" } ?? ""
            log.lines.withLock { $0.append((event.level, "\(event.message)\(error)")) }
        }
    }
}

@Suite struct RepeatingWarningsTests {
    @Test("a failure that repeats is a warning once, then debug; new words warn again; the recovery is a notice")
    func repeatsQuietly() {
        let log = CollectedLog()
        let warnings = RepeatingWarnings(logger: log.logger) { "in words: \($0)" }
        struct Down: Error {}
        for _ in 0..<5 { warnings.failed("refreshing the peer record", Down()) }
        warnings.failed("refreshing the peer record", "another reason")
        warnings.succeeded("refreshing the peer record")
        warnings.succeeded("refreshing the peer record")
        let lines = log.lines.withLock { $0 }
        #expect(lines.map(\.0) == [.warning, .debug, .debug, .debug, .debug, .warning, .notice])
        #expect(lines.first?.1 == "refreshing the peer record failed: in words: Down()")
        #expect(lines.last?.1 == "refreshing the peer record works again")
    }
}
