import DistriImaging

/// The front end's side of the cloud's `Encrypt` service: sends the image bytes through a `Client`
/// (which only moves bytes), then decodes the answer and verifies it here, before trusting it.
public struct ImageEncryptionClient: Sendable {
    /// Why an answer of the cloud was not accepted.
    public struct VerificationFailed: Error, CustomStringConvertible, Sendable {
        /// What did not match.
        public var reason: String
        public var description: String { "the cloud's encrypted image did not verify: \(reason)" }

        /// A failure for `reason`.
        public init(reason: String) {
            self.reason = reason
        }
    }

    /// The client the `Encrypt` calls go through.
    public let client: Client

    /// Encrypts through the cloud `client` reaches.
    public init(client: Client) {
        self.client = client
    }

    /// Encrypts `content` (an image or any file, with its name and media type) in the cloud, hidden
    /// in `cover` or in a generated cover, at `bitsPerChannel` (2, 4 or 8).
    public func encrypt(
        _ content: SealedContent, cover: [UInt8]? = nil, bitsPerChannel: Int = PayloadEmbedding.bitsPerChannel
    ) async throws -> SealedImage {
        try await encrypt(content.encoded(), cover: cover, bitsPerChannel: bitsPerChannel)
    }

    /// Encrypts `image` (an envelope, or a bare PNG as earlier versions sent) in the cloud, hidden in
    /// `cover` or in a generated cover. The answer is opened with its key and must give back exactly
    /// `image`; otherwise this throws ``VerificationFailed`` saying what was wrong.
    public func encrypt(
        _ image: [UInt8], cover: [UInt8]? = nil, bitsPerChannel: Int = PayloadEmbedding.bitsPerChannel
    ) async throws -> SealedImage {
        var body = image
        var params: [String] = []
        if bitsPerChannel != PayloadEmbedding.bitsPerChannel { params.append("density=\(bitsPerChannel)") }
        if let cover {
            body += cover
            params.append("cover=\(cover.count)")
        }
        let reply = try await client.send(body, service: EncryptService.name, params: params)
        let sealed: SealedImage
        do {
            sealed = try EncryptReply.decode(reply)
        } catch {
            throw VerificationFailed(reason: "\(error)")
        }
        try Self.verify(sealed, opensTo: image)
        return sealed
    }

    /// Checks that `sealed` opens with its own key to exactly `original`.
    public static func verify(_ sealed: SealedImage, opensTo original: [UInt8]) throws {
        let opened: [UInt8]
        do {
            opened = try ImageSealer.decrypt(png: sealed.png, key: sealed.key)
        } catch {
            throw VerificationFailed(reason: "\(error)")
        }
        guard opened == original else {
            throw VerificationFailed(
                reason: "it opens to \(opened.count) bytes that differ from the \(original.count) sent")
        }
    }
}
