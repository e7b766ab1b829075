import Foundation

/// A program to open an image with, given as one command line (`--viewer "feh -F"`): split into words
/// as a shell would for plain words and quotes (`'...'`, `"..."`, `\`; no variables, globs or pipes),
/// and the program found before anything else happens, so a viewer that cannot run costs nothing.
public struct ViewerCommand: Sendable, Equatable {
    /// The program's path, found on `PATH` when the command names no directory.
    public var executable: String
    /// The words after the program; the image's path is added after them.
    public var arguments: [String]

    /// Why a command line does not make a viewer.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Splits `line` into words and finds its program on `path` (a `PATH` value).
    public init(_ line: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) throws(Problem) {
        let words = try Self.words(line)
        guard let program = words.first else { throw Problem(description: "--viewer is empty") }
        guard let executable = Self.find(program, path: path ?? "/usr/local/bin:/usr/bin:/bin") else {
            throw Problem(
                description: program.contains("/")
                    ? "the viewer '\(program)' is not an executable file"
                    : "the viewer '\(program)' is not found on PATH")
        }
        self.executable = executable
        self.arguments = Array(words.dropFirst())
    }

    /// The words of `line`: blanks separate them; quotes group, a backslash escapes the next character
    /// (outside single quotes).
    static func words(_ line: String) throws(Problem) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in line {
            if escaped {
                word.append(character)
                escaped = false
            } else if let open = quote {
                if character == open {
                    quote = nil
                } else if character == "\\" && open == "\"" {
                    escaped = true
                } else {
                    word.append(character)
                }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == "\\" {
                escaped = true
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(character)
                inWord = true
            }
        }
        guard quote == nil, !escaped else {
            throw Problem(description: "--viewer has an unclosed quote or a trailing \\")
        }
        if inWord { words.append(word) }
        return words
    }

    /// `program` itself when it names a directory and is executable; else the first executable
    /// `DIR/program` on `path`.
    static func find(_ program: String, path: String) -> String? {
        if program.contains("/") { return isExecutable(program) ? program : nil }
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(program)"
            if isExecutable(candidate) { return candidate }
        }
        return nil
    }

    /// A regular file with an execute bit that this process may execute (root may read anything, but
    /// runs only files marked executable).
    private static func isExecutable(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o111 != 0 else { return false }
        return access(path, X_OK) == 0
    }
}
