/// The version both tools report (`--version`): one place in the code.
public enum DistriVersion {
    /// Semantic version of the package; the minor number follows the last issue the release closed.
    public static let current = "0.23.0"
}
