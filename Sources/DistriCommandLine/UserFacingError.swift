import ArgumentParser
import Distri
import Foundation

/// One mapping from what went wrong (transport, TLS, the cloud's refusals, the tools' own errors) to
/// what `distri-node` and `distri-peer` print: a sentence, a hint where one helps, and an exit code
/// from one table (README, "Exit codes"). A library's internal type names and build paths never reach
/// the sentence; the raw error is the `detail`, printed with `--log-level debug` (or `DISTRI_DEBUG=1`).
public struct UserFacingError: Sendable, Equatable {
    /// What kind of failure, with its exit code.
    public enum Category: String, Sendable {
        /// The cloud (or a peer) could not be reached: nothing listens, no route, a firewall.
        case unreachable
        /// TLS did not agree: plain TCP against TLS or the other way round, a certificate of another CA.
        case tls
        /// The cloud refused: not allowed, over a quota, a condition not met.
        case refused
        /// What was named does not exist.
        case notFound
        /// The cloud is busy or shutting down: try again.
        case busy
        /// The configuration cannot be used: a bad configuration file, a setting of the wrong kind or
        /// out of range (whichever layer gave it).
        case configuration
        /// Anything else.
        case failed

        /// The exit code (sysexits.h where one fits; 64 is ArgumentParser's for usage errors).
        public var exitCode: Int32 {
            switch self {
            case .unreachable: 69
            case .tls: 69
            case .refused: 77
            case .notFound: 66
            case .busy: 75
            case .configuration: 78
            case .failed: 1
            }
        }
    }

    public var category: Category
    public var message: String
    public var hint: String?
    /// The error as the library described it.
    public var detail: String

    /// Maps `error`; `arguments` (the command line) tells whether `--insecure` was given.
    public init(_ error: any Error, arguments: [String] = CommandLine.arguments) {
        let raw = "\(error)"
        self.detail = raw
        if let failure = error as? CommandFailure {
            self.category = failure.category
            self.message = failure.message
            self.hint = failure.hint
            return
        }
        if let failure = error as? any ReportableError {
            self.category =
                switch failure.failureKind {
                case .notFound: .notFound
                case .refused: .refused
                case .failed: .failed
                }
            self.message = Self.scrub(failure.message)
            self.hint = nil
            if failure.failureKind != .failed || Self.unreachableReason(raw) == nil { return }
        }
        let insecure = arguments.contains("--insecure")
        let clientError = error as? ClientError
        let at = clientError?.node.map { " at \($0)" } ?? ""
        if raw.contains("WRONG_VERSION_NUMBER") || (insecure && raw.contains("protocolViolation")) {
            self.category = .tls
            if insecure {
                self.message = "the cloud\(at) speaks TLS, and this ran with --insecure"
                self.hint = "drop --insecure (give --ca with the cloud's ca.pem if it is not the local cloud's)"
            } else {
                self.message = "the cloud\(at) does not speak TLS"
                self.hint = "add --insecure if the cloud runs with --insecure"
            }
        } else if raw.contains("CERTIFICATE_VERIFY_FAILED") || raw.contains("handshakeFailed") {
            self.category = .tls
            self.message = "the cloud's certificate\(at) was not issued by the CA this command trusts"
            self.hint = "give --ca with the cloud's ca.pem (or set $DISTRI_CA)"
        } else if let clientError, clientError.kind == .remote, let code = clientError.remoteCode {
            self.message = Self.scrub(clientError.message) + (at.isEmpty ? "" : " (\(at.dropFirst()))")
            self.hint = nil
            switch code {
            case .unauthorized, .conflict, .quotaExceeded: self.category = .refused
            case .notFound, .unknownService: self.category = .notFound
            case .busy, .unavailable, .shuttingDown, .deadlineExceeded: self.category = .busy
            default: self.category = .failed
            }
        } else if let reason = Self.unreachableReason(raw),
            clientError.map({ [.connectFailed, .noReachableNode, .connectionLost].contains($0.kind) }) ?? true
        {
            self.category = .unreachable
            let place =
                clientError?.node.map { "\($0)" } ?? Self.located(in: raw) ?? Self.firstAddress(in: raw) ?? "the cloud"
            self.message = "cannot reach \(place): \(reason)"
            self.hint =
                "check --cloud (or $DISTRI_CLOUD, else the cloud file of `distri-node local`) and that the nodes run"
        } else {
            self.category = .failed
            self.message = Self.scrub(raw)
            self.hint = nil
        }
    }

    /// `{"error": {"code", "message", "hint"}}`.
    public var json: JSONValue {
        var fields: [String: JSONValue] = ["code": .string(category.rawValue), "message": .string(message)]
        if let hint { fields["hint"] = .string(hint) }
        return .object(["error": .object(fields)])
    }

    /// Prints the error on standard error (as JSON when the command line has `--json` or `--pretty`, so standard
    /// output holds only results; the detail too when debugging) and exits with its code.
    public func printAndExit(arguments: [String] = CommandLine.arguments) -> Never {
        if arguments.contains("--pretty") {
            FileHandle.standardError.write(Data((json.prettyJSONText + "\n").utf8))
        } else if arguments.contains("--json") {
            FileHandle.standardError.write(Data((json.jsonText + "\n").utf8))
        } else {
            var text = "Error: \(message)\n"
            if let hint { text += "hint: \(hint)\n" }
            FileHandle.standardError.write(Data(text.utf8))
        }
        let debugging =
            ProcessInfo.processInfo.environment["DISTRI_DEBUG"] == "1"
            || zip(arguments, arguments.dropFirst()).contains {
                $0 == "--log-level" && ($1 == "debug" || $1 == "trace")
            }
        if debugging { FileHandle.standardError.write(Data("detail: \(detail)\n".utf8)) }
        exit(category.exitCode)
    }

    /// Why a connection failed, in words, when the text is a connection failure.
    static func unreachableReason(_ raw: String) -> String? {
        let text = raw.lowercased()
        guard
            text.contains("connectfailed") || text.contains("noreachablenode") || text.contains("no node reachable")
                || text.contains("connection refused") || text.contains("connection reset")
        else { return nil }
        if text.contains("refused") { return "nothing listens there" }
        if text.contains("reset") { return "the connection was reset (nothing listens there, or a firewall drops it)" }
        if text.contains("timed out") || text.contains("timeout") {
            return "no answer in time (the host is down, or a firewall)"
        }
        if text.contains("unreachable") || text.contains("no route") { return "no route to the host" }
        return "the connection failed"
    }

    /// The cloud's addresses and where they came from, as ``CloudLocation/explain(_:)`` words them
    /// (`no node reachable at ADDRESSES (from SOURCE): ...`).
    static func located(in text: String) -> String? {
        guard let start = text.range(of: "no node reachable at "),
            let end = text.range(of: "): ", range: start.upperBound..<text.endIndex)
        else { return nil }
        return String(text[start.upperBound..<end.lowerBound]) + ")"
    }

    /// The first `host:port` in `text`.
    static func firstAddress(in text: String) -> String? {
        let pattern = #"[A-Za-z0-9.\-]+:[0-9]{1,5}"#
        guard let range = text.range(of: pattern, options: .regularExpression) else { return nil }
        return String(text[range])
    }

    /// `text` (an error's words, perhaps with other errors' descriptions nested in it) for people:
    /// without build paths, nested connection failures in words.
    public static func readable(_ text: String) -> String { scrub(text) }

    /// `text` without build paths and with nested connection failures in words.
    static func scrub(_ text: String) -> String {
        var text = text.replacingOccurrences(
            of: #" at /[^ \]]*\.build/[^ \]]*"#, with: "", options: .regularExpression)
        text = text.replacingOccurrences(
            of: #"connectFailed at ([A-Za-z0-9.\-:\[\]]+): [^;)]*"#, with: "cannot connect to $1",
            options: .regularExpression)
        return text
    }
}

/// A command's own failure that is not a usage error (those are ArgumentParser's `ValidationError`,
/// exit 64): its words, a hint, and the category that gives its exit code.
public struct CommandFailure: Error, Sendable, CustomStringConvertible {
    public var category: UserFacingError.Category
    public var message: String
    public var hint: String?

    public init(_ category: UserFacingError.Category, _ message: String, hint: String? = nil) {
        self.category = category
        self.message = message
        self.hint = hint
    }

    public var description: String { message }

    /// A configuration that cannot be used (exit 78, sysexits' `EX_CONFIG`).
    public static func configuration(_ message: String, hint: String? = nil) -> CommandFailure {
        CommandFailure(.configuration, message, hint: hint)
    }
}

extension AsyncParsableCommand {
    /// Parses the command line and runs the command; ArgumentParser's own errors (usage, `--help`,
    /// `--version`, `ExitCode`) end as ArgumentParser ends them, every other error through
    /// ``UserFacingError``.
    public static func mainWithUserFacingErrors() async {
        let command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                var synchronous = command
                try synchronous.run()
            }
        } catch let error where isArgumentParserError(error) {
            exit(withError: error)
        } catch {
            UserFacingError(error).printAndExit()
        }
    }
}

/// Whether ArgumentParser ends `error` itself: usage errors, `ExitCode`, `CleanExit`, and its own
/// internal errors (`help` and `--help` arrive as a command whose run throws one).
func isArgumentParserError(_ error: any Error) -> Bool {
    error is ExitCode || error is ValidationError || error is CleanExit
        || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
}
