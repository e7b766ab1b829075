import Logging

/// The logging settings both long-running commands take: `log-level` and `log-format`.
public enum LogSettings {
    /// The two settings, the level defaulting to `defaultLevel`.
    public static func specs(defaultLevel: Logger.Level) -> [SettingSpec] {
        [
            SettingSpec(
                "log-level", .text, default: .text(defaultLevel.rawValue),
                "Log level: trace, debug, info, notice, warning, error or critical."),
            SettingSpec(
                "log-format", .text, default: .text(LogFormat.text.rawValue),
                "Log format: text (lines for people) or json (one JSON object a line)."),
        ]
    }

    /// The flags given, by setting key.
    public static func given(level: Logger.Level?, format: LogFormat?) -> [(String, SettingValue?)] {
        [("log-level", level.map { .text($0.rawValue) }), ("log-format", format.map { .text($0.rawValue) })]
    }
}

extension ResolvedSettings {
    /// The level and format in force, or a configuration error naming where a bad one came from.
    public func logging() throws -> (level: Logger.Level, format: LogFormat) {
        guard let level = Logger.Level(rawValue: text("log-level") ?? "") else {
            throw invalid("log-level", "must be trace, debug, info, notice, warning, error or critical")
        }
        guard let format = LogFormat(rawValue: text("log-format") ?? "") else {
            throw invalid("log-format", "must be text or json")
        }
        return (level, format)
    }
}
