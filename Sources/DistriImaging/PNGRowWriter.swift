import CPNGShim

/// A PNG encoded row by row (RGBA8, not interlaced) through libpng: each row goes in as it is made,
/// and the encoded bytes come out as they are produced (``take()``), so neither the pixels nor the
/// whole file are ever held. One owner at a time.
public final class PNGRowWriter {
    /// The image's width in pixels.
    public let width: Int
    /// The image's height in pixels.
    public let height: Int
    /// Rows written so far.
    public private(set) var rowsWritten = 0
    private var writer: OpaquePointer?

    /// A writer of a `width` × `height` RGBA PNG encoded with `settings`.
    public init(width: Int, height: Int, settings: PNGEncodeSettings = .default) throws {
        guard width > 0, height > 0, width <= 1_000_000, height <= 1_000_000 else {
            throw ImagingError.encodingFailed("invalid dimensions \(width)x\(height)")
        }
        self.width = width
        self.height = height
        var message = [CChar](repeating: 0, count: 256)
        var made: OpaquePointer?
        let code = message.withUnsafeMutableBufferPointer { text in
            cpng_row_writer_begin(
                UInt32(width), UInt32(height), Int32(settings.level), settings.filter.libpngMask,
                settings.strategy.zlibValue, &made, text.baseAddress, text.count)
        }
        guard code == Int32(CPNG_OK), let made else { throw Self.failure(message) }
        writer = made
    }

    deinit { cpng_row_writer_free(writer) }

    /// Encodes the next row: `width * 4` bytes of RGBA.
    public func write(row: UnsafeRawBufferPointer) throws {
        guard row.count == width * 4, rowsWritten < height, let base = row.baseAddress else {
            throw ImagingError.encodingFailed("row \(rowsWritten) of \(height): \(row.count) bytes for width \(width)")
        }
        var message = [CChar](repeating: 0, count: 256)
        let code = message.withUnsafeMutableBufferPointer { text in
            cpng_row_writer_row(
                writer, base.assumingMemoryBound(to: UInt8.self), text.baseAddress, text.count)
        }
        guard code == Int32(CPNG_OK) else { throw Self.failure(message) }
        rowsWritten += 1
    }

    /// Ends the file; every row must have been written.
    public func end() throws {
        guard rowsWritten == height else {
            throw ImagingError.encodingFailed("\(rowsWritten) of \(height) rows written")
        }
        var message = [CChar](repeating: 0, count: 256)
        let code = message.withUnsafeMutableBufferPointer { text in
            cpng_row_writer_end(writer, text.baseAddress, text.count)
        }
        guard code == Int32(CPNG_OK) else { throw Self.failure(message) }
    }

    /// The bytes encoded since the last call.
    public func take() -> [UInt8] {
        var data: UnsafePointer<UInt8>?
        var size = 0
        cpng_row_writer_take(writer, &data, &size)
        guard let data, size > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            if let base = buffer.baseAddress { base.initialize(from: data, count: size) }
            initialized = size
        }
    }

    private static func failure(_ message: [CChar]) -> ImagingError {
        .encodingFailed(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}
