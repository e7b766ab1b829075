/// What a cover hides: an image or any file, with its name and media type. The name and media type
/// travel inside the sealed payload, never in the clear; the cloud's `Encrypt` reads them only to
/// check an image's structure before sealing it.
///
/// Envelope layout (the plaintext that is sealed; big-endian):
///
///     magic "DENV" | version 1 | kind (0 PNG, 1 JPEG, 2 any file)
///     | name length (u16) | name (UTF-8) | media type length (u16) | media type (UTF-8) | the bytes
///
/// A plaintext that starts with the PNG signature instead is a PNG sealed by an earlier version
/// (no name, no envelope): it opens as kind `.png`.
public struct SealedContent: Sendable, Equatable {
    /// What the bytes are.
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// A PNG image.
        case png = 0
        /// A JPEG image.
        case jpeg = 1
        /// Any other file.
        case file = 2

        /// `png`, `jpeg` or `file`.
        public var name: String {
            switch self {
            case .png: "png"
            case .jpeg: "jpeg"
            case .file: "file"
            }
        }
    }

    /// What the bytes are.
    public var kind: Kind
    /// The original file's name (its last path component), or empty.
    public var name: String
    /// The media type, e.g. `image/jpeg`, `application/pdf`.
    public var mediaType: String
    /// The file's bytes.
    public var bytes: [UInt8]

    static let magic: [UInt8] = Array("DENV".utf8)
    static let version: UInt8 = 1
    /// Longest name and media type kept, in UTF-8 bytes.
    public static let maxNameBytes = 255
    /// Longest media type kept, in UTF-8 bytes.
    public static let maxMediaTypeBytes = 127

    /// An envelope for `bytes`, named `name`, of `mediaType`.
    public init(kind: Kind, name: String, mediaType: String, bytes: [UInt8]) {
        self.kind = kind
        self.name = String(decoding: Array(name.utf8.prefix(Self.maxNameBytes)), as: UTF8.self)
        self.mediaType = String(decoding: Array(mediaType.utf8.prefix(Self.maxMediaTypeBytes)), as: UTF8.self)
        self.bytes = bytes
    }

    /// The content of a file named `name`: a PNG or a JPEG by its first bytes, else any file, with a
    /// media type from its extension.
    public init(file bytes: [UInt8], name: String) {
        if bytes.count >= 8, Array(bytes[0..<8]) == PNGCodec.signature {
            self.init(kind: .png, name: name, mediaType: "image/png", bytes: bytes)
        } else if JPEGStructure.looksLikeJPEG(bytes) {
            self.init(kind: .jpeg, name: name, mediaType: "image/jpeg", bytes: bytes)
        } else {
            self.init(kind: .file, name: name, mediaType: MediaTypes.forName(name), bytes: bytes)
        }
    }

    /// Whether the content is an image a viewer can draw.
    public var isImage: Bool { kind != .file }

    /// The envelope's bytes before the content's own.
    public var header: [UInt8] {
        let name = Array(self.name.utf8)
        let media = Array(mediaType.utf8)
        return Self.magic + [Self.version, kind.rawValue, UInt8(name.count >> 8), UInt8(name.count & 0xFF)] + name
            + [UInt8(media.count >> 8), UInt8(media.count & 0xFF)] + media
    }

    /// The envelope: what is sealed.
    public func encoded() -> [UInt8] {
        var out = header
        out.reserveCapacity(out.count + bytes.count)
        out += bytes
        return out
    }

    /// The envelope's fields and where the content's bytes start, without copying them; nil when
    /// `plaintext` is not an envelope (an earlier version's bare PNG).
    public static func header(of plaintext: [UInt8]) throws(ImagingError) -> (
        kind: Kind, name: String, mediaType: String, start: Int
    )? {
        // Without the envelope's magic: a bare PNG, as earlier versions sealed (the PNG check says
        // what is wrong when it is not one).
        guard plaintext.count >= 4, Array(plaintext[0..<4]) == magic else { return nil }
        guard plaintext.count >= 8 else { throw .malformedEnvelope("truncated before the name") }
        guard plaintext[4] == version else { throw .unsupportedVersion(Int(plaintext[4])) }
        guard let kind = Kind(rawValue: plaintext[5]) else { throw .malformedEnvelope("unknown kind \(plaintext[5])") }
        var offset = 6
        func text(_ limit: Int, _ what: String) throws(ImagingError) -> String {
            guard offset + 2 <= plaintext.count else { throw .malformedEnvelope("truncated before the \(what)") }
            let length = Int(plaintext[offset]) << 8 | Int(plaintext[offset + 1])
            guard length <= limit, offset + 2 + length <= plaintext.count else {
                throw .malformedEnvelope("the \(what) is longer than \(limit) bytes or truncated")
            }
            defer { offset += 2 + length }
            return String(decoding: plaintext[offset + 2..<offset + 2 + length], as: UTF8.self)
        }
        let name = try text(maxNameBytes, "name")
        let media = try text(maxMediaTypeBytes, "media type")
        return (kind, name, media, offset)
    }

    /// Reads an opened plaintext: an envelope, or an earlier version's bare PNG.
    public init(plaintext: [UInt8]) throws(ImagingError) {
        guard let header = try Self.header(of: plaintext) else {
            self.init(kind: .png, name: "", mediaType: "image/png", bytes: plaintext)
            return
        }
        self.init(
            kind: header.kind, name: header.name, mediaType: header.mediaType,
            bytes: Array(plaintext[header.start...]))
    }

    /// A file name to save the content under: its own name when it has one, else `fallback` with the
    /// extension of its kind or media type.
    public func fileName(fallback: String) -> String {
        if !name.isEmpty, !name.contains("/"), name != ".", name != ".." { return name }
        return fallback + "." + MediaTypes.fileExtension(kind: kind, mediaType: mediaType)
    }
}

/// Media types from file name extensions, and back, for the common kinds of files people share.
public enum MediaTypes {
    static let byExtension: [String: String] = [
        "pdf": "application/pdf", "txt": "text/plain", "md": "text/markdown", "csv": "text/csv",
        "html": "text/html", "json": "application/json", "zip": "application/zip", "gz": "application/gzip",
        "tar": "application/x-tar", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
        "gif": "image/gif", "webp": "image/webp", "heic": "image/heic", "svg": "image/svg+xml",
        "mp3": "audio/mpeg", "mp4": "video/mp4", "mov": "video/quicktime", "doc": "application/msword",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "odt": "application/vnd.oasis.opendocument.text",
    ]

    /// The media type of a file named `name`, by its extension (`application/octet-stream` when unknown).
    public static func forName(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "application/octet-stream" }
        return byExtension[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }

    /// An extension for content of `kind` and `mediaType`.
    public static func fileExtension(kind: SealedContent.Kind, mediaType: String) -> String {
        switch kind {
        case .png: return "png"
        case .jpeg: return "jpg"
        case .file:
            return byExtension.filter { $0.value == mediaType }.keys.sorted().first ?? "bin"
        }
    }
}

/// The checks a content passes before it is sealed: a PNG's or a JPEG's structure and dimensions
/// (never its pixels), nothing for any other file.
public enum ContentCheck {
    /// What the check found: the content's kind and, for an image, its dimensions.
    public struct Found: Sendable, Equatable {
        /// What the content is.
        public var kind: SealedContent.Kind
        /// The image's width in pixels (0 for a file).
        public var width: Int
        /// The image's height in pixels (0 for a file).
        public var height: Int

        /// A finding with the given fields.
        public init(kind: SealedContent.Kind, width: Int, height: Int) {
            self.kind = kind
            self.width = width
            self.height = height
        }
    }

    /// Checks `plaintext` (an envelope, or an earlier version's bare PNG) against `limits`.
    @discardableResult
    public static func check(_ plaintext: [UInt8], limits: PNGLimits) throws -> Found {
        guard let header = try SealedContent.header(of: plaintext) else {
            let size = try PNGStructure.check(plaintext, limits: limits)
            return Found(kind: .png, width: size.width, height: size.height)
        }
        // The content's bytes are checked where they are, not copied.
        return try plaintext.withUnsafeBufferPointer { all in
            let bytes = UnsafeBufferPointer(rebasing: all[header.start...])
            switch header.kind {
            case .png:
                let size = try PNGStructure.check(buffer: bytes, limits: limits)
                return Found(kind: .png, width: size.width, height: size.height)
            case .jpeg:
                let info = try JPEGStructure.check(buffer: bytes, limits: limits)
                return Found(kind: .jpeg, width: info.width, height: info.height)
            case .file:
                return Found(kind: .file, width: 0, height: 0)
            }
        }
    }
}
