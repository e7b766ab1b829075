import ArgumentParser
import Foundation

/// One grammar for the commands that name an image and a peer: the image first, the peer as an option
/// (`grant IMG --to bob`, `reject IMG --to bob`, `request IMG --from alice`), as `send` and `view` do.
/// The older order (`grant bob IMG`) still works for one release, with a note on standard error.
struct ImageAndPeer {
    var image: String
    var peer: String
    /// Set when the older order was used: the note to print.
    var deprecation: String?

    /// `words`: the positional arguments; `option`: the peer option's value; `flag`: its name
    /// (`--to`, `--from`); `command`: the subcommand, for the messages.
    init(words: [String], option: String?, flag: String, command: String) throws {
        switch (words.count, option) {
        case (1, let peer?):
            self.image = words[0]
            self.peer = peer
        case (2, nil):
            self.peer = words[0]
            self.image = words[1]
            self.deprecation =
                "note: `distri-peer \(command) \(words[0]) \(words[1])` is the older order; write `distri-peer \(command) \(words[1]) \(flag) \(words[0])` (the older order goes in the next release)"
        default:
            throw ValidationError("give the image and the peer: distri-peer \(command) IMAGE \(flag) PEER")
        }
    }

    /// Prints the deprecation note, if any, on standard error.
    func noteDeprecation() {
        if let deprecation { FileHandle.standardError.write(Data((deprecation + "\n").utf8)) }
    }
}
