import Distri
import DistriCore
import DistriIdentity
import DistriImaging
import Foundation
import NIOCore

extension PeerImages {
    /// Files larger than this go through the streamed Encrypt (48 MiB: what one call seals).
    public static var streamingThreshold: Int { cloudLimits.maxImageBytes }
    /// The largest cover a peer opens (a streamed file's cover is large: 170 Mpixel for 500 MB at 8
    /// bits per channel). Opening decodes the whole cover: 1.5 GiB of RGBA at this limit.
    public static let coverLimits = PNGLimits(maxWidth: 65535, maxHeight: 65535, maxPixels: 384 << 20)
    /// The largest cover opened a row at a time (only a row is held, so the bound is libpng's on a
    /// side): a 1 GiB file at 2 bits per channel makes a cover of 1.4 Gpixel.
    public static let streamedCoverLimits = PNGLimits(maxWidth: 1_000_000, maxHeight: 1_000_000, maxPixels: 1 << 34)
    /// Bytes of the file in one `EncryptChunk`.
    static let streamChunkBytes = 4 << 20

    /// Encrypts the file at `path` through the cloud's streamed Encrypt
    /// (`EncryptStreamService`): the file is read and sent a chunk at a time to the node that
    /// opened the session, and the cover PNG written to the home as it comes back, so neither side holds
    /// the whole file. A generated cover only, at `density` (the densest, 8, when nil: the smallest
    /// cover). Verified afterwards: the stored image is opened with its key and compared with the file.
    public func encryptStreamed(
        path: String, name: String, overwrite: Bool = false, density: Int? = nil, publishKind: Bool = false,
        progress: DeliveryProgress? = nil
    ) async throws -> Stored {
        try PeerName.validate(name, what: "image name")
        let home = identity.home
        let (imageFile, keyFile) = (home.imageFile(name), home.keyFile(name))
        if !overwrite, SecureFiles.exists(imageFile) || SecureFiles.exists(keyFile) {
            throw PeerError("an image named '\(name)' is already stored in \(home.path); use --force or --as NAME")
        }
        guard let handle = FileHandle(forReadingAtPath: path), let fileSize = SecureFiles.size(path) else {
            throw PeerError("cannot read \(path)", kind: .notFound)
        }
        defer { try? handle.close() }
        let first = try handle.read(upToCount: Self.streamChunkBytes).map { [UInt8]($0) } ?? []
        let content = SealedContent(file: first, name: (path as NSString).lastPathComponent)
        try Self.refuseMisnamed(content, fileName: path)
        let header = content.header
        let total = header.count + fileSize
        let limits = EncryptStreamService.Limits()
        guard total <= limits.maxBytes else {
            throw PeerError(
                "\(path) has \(fileSize) bytes; the cloud seals at most \(limits.maxBytes - header.count) (nothing was uploaded)",
                kind: .refused)
        }
        let found = try Self.checkStreamedHeader(content, path: path, limits: limits.content)
        let bits = density ?? 8

        // Open a session on the node the cloud elects; every chunk then goes to that node.
        let client = cloud.client
        let opened = try await client.send(
            [], service: EncryptStreamService.open, params: ["size=\(total)", "density=\(bits)"])
        guard let reply = (try? JSONParser.parse(opened))?.objectValue, let session = reply["session"]?.stringValue,
            let node = reply["node"]?.stringValue.flatMap(NodeAddress.init), let keyText = reply["key"]?.stringValue,
            let width = reply["width"]?.wholeNumberValue, let height = reply["height"]?.wholeNumberValue
        else { throw PeerError("the cloud's EncryptOpen answer is malformed") }
        let key = try ImageKey(text: keyText)
        try SecureFiles.makeDirectory(home.imagesDirectory)
        try SecureFiles.makeDirectory(home.keysDirectory)
        let partial = imageFile + ".part"
        try? FileManager.default.removeItem(atPath: partial)
        defer { try? FileManager.default.removeItem(atPath: partial) }
        var offset = 0
        var body = header + first
        var produced = 0
        // Bounded: each pass sends at least one byte of the file (or the empty file's header once).
        while offset < total {
            if body.count < Self.streamChunkBytes, offset + body.count < total {
                let more = try handle.read(upToCount: Self.streamChunkBytes - body.count).map { [UInt8]($0) } ?? []
                guard !more.isEmpty else { throw PeerError("\(path) ended early: it changed while it was read") }
                body += more
            }
            let piece = Array(body.prefix(Self.streamChunkBytes))
            body.removeFirst(piece.count)
            let png = try await client.call(
                ByteBuffer(bytes: piece), service: EncryptStreamService.chunk,
                params: ["session=\(session)", "offset=\(offset)"], node: node, timeout: .seconds(60), routing: .local
            ).get()
            let bytes = Array(buffer: png)
            try SecureFiles.append(bytes, to: partial, sync: false)
            produced += bytes.count
            offset += piece.count
            try progress?(offset, total)
        }
        try SecureFiles.sync(partial)
        try Self.verifyStreamed(partial, key: key, againstFileAt: path, header: header)
        // The key first: a sealed image without its key would be lost.
        try SecureFiles.write(Array((key.text + "\n").utf8), to: keyFile)
        guard rename(partial, imageFile) == 0 else { throw PeerError("cannot move \(partial) to \(imageFile)") }
        let entry = try await publish(
            name: name, bytes: fileSize, found: found, content: content, publishKind: publishKind,
            stored: (imageFile, keyFile))
        return Stored(
            name: name, imageFile: imageFile, keyFile: keyFile, entry: entry, coverWasGenerated: true,
            original: Original(
                kind: content.kind, mediaType: content.mediaType, fileName: content.name, bytes: fileSize,
                width: found.width, height: found.height),
            cover: Cover(bytes: produced, width: Int(width), height: Int(height), bitsPerChannel: bits))
    }

    /// An image's dimensions from its header (the whole file is not decoded here: it is too large to
    /// hold), within the content limits; nothing for any other file.
    static func checkStreamedHeader(_ content: SealedContent, path: String, limits: PNGLimits) throws
        -> ContentCheck.Found
    {
        let size: (width: Int, height: Int)?
        switch content.kind {
        case .png: size = PNGStructure.declaredSize(content.bytes)
        case .jpeg: size = JPEGStructure.declaredSize(content.bytes)
        case .file: return ContentCheck.Found(kind: .file, width: 0, height: 0)
        }
        guard let size, size.width <= limits.maxWidth, size.height <= limits.maxHeight,
            size.width * size.height <= limits.maxPixels
        else {
            throw PeerError(
                "\(path) cannot be encrypted: its image header is missing or its dimensions are above \(limits.maxPixels) pixels (nothing was uploaded)",
                kind: .refused)
        }
        return ContentCheck.Found(kind: content.kind, width: size.width, height: size.height)
    }

    /// Opens the cover at `png` with `key`, a row at a time (``DistriImaging/StreamExtractor``), and
    /// compares what it hides with `header` and the file at `path`, read as it goes: neither is held
    /// whole.
    static func verifyStreamed(_ png: String, key: ImageKey, againstFileAt path: String, header: [UInt8]) throws {
        guard let file = FileHandle(forReadingAtPath: path) else { throw PeerError("cannot read \(path)") }
        defer { try? file.close() }
        var expected = header[...]
        var compared = 0
        do {
            try StreamExtractor.open(path: png, key: key, limits: streamedCoverLimits) { plaintext in
                var rest = plaintext[...]
                // Bounded: each pass compares at least one byte, or reads more of the file.
                while !rest.isEmpty {
                    if expected.isEmpty {
                        let more = try file.read(upToCount: max(rest.count, 1 << 16)).map { [UInt8]($0) } ?? []
                        guard !more.isEmpty else { throw VerifyMismatch() }
                        expected = more[...]
                    }
                    let count = min(rest.count, expected.count)
                    guard rest.prefix(count).elementsEqual(expected.prefix(count)) else { throw VerifyMismatch() }
                    rest = rest.dropFirst(count)
                    expected = expected.dropFirst(count)
                    compared += count
                }
            }
        } catch is VerifyMismatch {
            throw ImageEncryptionClient.VerificationFailed(reason: "it opens to bytes that differ from the file sent")
        } catch let error as ImagingError {
            throw ImageEncryptionClient.VerificationFailed(reason: "\(error)")
        }
        let leftOver = try file.read(upToCount: 1).map { !$0.isEmpty } ?? false
        guard expected.isEmpty, !leftOver, compared == header.count + (SecureFiles.size(path) ?? -1) else {
            throw ImageEncryptionClient.VerificationFailed(reason: "it opens to fewer bytes than the file sent")
        }
    }
}

/// What the cover opened to differs from the file.
private struct VerifyMismatch: Error {}
