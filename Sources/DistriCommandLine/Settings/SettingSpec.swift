import ArgumentParser

/// A setting's value, whichever layer (flag, environment, file, default) gave it.
public enum SettingValue: Sendable, Equatable, CustomStringConvertible {
    case text(String)
    case integer(Int)
    case number(Double)
    case boolean(Bool)
    case list([String])

    /// The value as a person writes it: a list comma-separated.
    public var description: String {
        switch self {
        case .text(let text): text
        case .integer(let integer): String(integer)
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : "\(number)"
        case .boolean(let boolean): String(boolean)
        case .list(let items): items.joined(separator: ",")
        }
    }
}

extension SettingValue {
    /// The items of a comma-separated flag, spaces around them trimmed, empty ones dropped.
    public static func items(of text: String) -> [String] {
        text.split(separator: ",").map { String($0.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
            .filter { !$0.isEmpty }
    }
}

/// The help of `--config`, the same on both tools.
public enum ConfigurationFileHelp {
    public static let help = ArgumentHelp(
        "A configuration file (.json, .yaml or .yml) of these settings, keyed by the flags' names; flags win over "
            + "the environment (DISTRI_ and the name in capitals, `_` for `-`), which wins over the file.",
        valueName: "file")
}

/// One setting a long-running command (`distri-node run`, `distri-peer serve`) takes from a flag,
/// the environment, a configuration file or its default, in that order of precedence. One key
/// names it everywhere: the flag is `--KEY`, the file's key is `KEY`, the environment variable is
/// `DISTRI_KEY` in capitals with `_` for `-` (`max-payload-mib`: `--max-payload-mib`,
/// `max-payload-mib:`, `DISTRI_MAX_PAYLOAD_MIB`).
public struct SettingSpec: Sendable {
    /// What a setting's value is.
    public enum Kind: Sendable {
        case text, integer, number, boolean, list

        /// The kind in words, for errors.
        var words: String {
            switch self {
            case .text: "text"
            case .integer: "a whole number"
            case .number: "a number"
            case .boolean: "true or false"
            case .list: "a list (comma-separated in a flag or the environment, a list in the file)"
            }
        }
    }

    /// The setting's name: the flag without its dashes, the file's key.
    public let key: String
    public let kind: Kind
    /// The value when no layer gives one; nil: the setting is unset (an optional setting).
    public let defaultValue: SettingValue?
    /// What the setting does, without its default (the flag's help adds it).
    public let summary: String
    /// The environment variable, when it is not `DISTRI_KEY` (one that existed before: `home` is
    /// `DISTRI_PEER_HOME`, as for every `distri-peer` command).
    private let environmentOverride: String?

    public init(
        _ key: String, _ kind: Kind, default defaultValue: SettingValue? = nil, environment: String? = nil,
        _ summary: String
    ) {
        self.key = key
        self.kind = kind
        self.defaultValue = defaultValue
        self.environmentOverride = environment
        self.summary = summary
    }

    /// `--KEY`.
    public var flag: String { "--" + key }

    /// `DISTRI_KEY`: capitals, `_` for `-` (unless the setting names another variable).
    public var environmentName: String {
        environmentOverride ?? "DISTRI_" + String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// The flag's help: the summary and the default.
    public var help: String {
        guard let defaultValue, defaultValue != .boolean(false) else { return summary }
        return "\(summary) (default: \(defaultValue))"
    }
}

extension Sequence<SettingSpec> {
    /// The setting named `key`, which a command's table must hold.
    public func spec(_ key: String) -> SettingSpec {
        guard let spec = first(where: { $0.key == key }) else { preconditionFailure("no setting \(key)") }
        return spec
    }

    /// The flag help of the setting named `key`.
    public func help(_ key: String, valueName: String? = nil) -> ArgumentHelp {
        ArgumentHelp(spec(key).help, valueName: valueName)
    }
}
