import Logging
import Synchronization

/// Warnings of work the daemon does again and again (refreshing its record, the outbox, the mailbox,
/// the relay link): a failure is logged at `warning` the first time and when its words change, at
/// `debug` while it repeats, and the recovery at `notice`; so a cloud that is down for an hour gives
/// two lines, not one every refresh. Errors are put in words by `describe`.
final class RepeatingWarnings: Sendable {
    private let logger: Logger
    private let describe: @Sendable (any Error) -> String
    /// The last failure's words, per kind of work.
    private let failing = Mutex<[String: String]>([:])

    init(logger: Logger, describe: @escaping @Sendable (any Error) -> String) {
        self.logger = logger
        self.describe = describe
    }

    /// `work` failed with `error`.
    func failed(_ work: String, _ error: any Error, metadata: Logger.Metadata = [:]) {
        failed(work, describe(error), metadata: metadata)
    }

    /// `work` failed for `reason`.
    func failed(_ work: String, _ reason: String, metadata: Logger.Metadata = [:]) {
        let repeated = failing.withLock { failing in
            defer { failing[work] = reason }
            return failing[work] == reason
        }
        var metadata = metadata
        metadata["error"] = "\(reason)"
        logger.log(level: repeated ? .debug : .warning, "\(work) failed", metadata: metadata)
    }

    /// `work` succeeded: a recovery from a failure is logged once.
    func succeeded(_ work: String) {
        guard failing.withLock({ $0.removeValue(forKey: work) }) != nil else { return }
        logger.notice("\(work) works again")
    }
}
