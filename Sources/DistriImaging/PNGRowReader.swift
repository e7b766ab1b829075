import CPNGShim

/// A PNG file read row by row through libpng: only 8-bit RGBA without interlacing (the covers Distri
/// writes), within the limits, one row held at a time. One owner at a time.
public final class PNGRowReader {
    /// The image's width in pixels.
    public let width: Int
    /// The image's height in pixels.
    public let height: Int
    /// Rows read so far.
    public private(set) var rowsRead = 0
    private var reader: OpaquePointer?

    /// Opens the PNG at `path` and reads its header; throws when it is not an 8-bit RGBA PNG within `limits`.
    public init(path: String, limits: PNGLimits = .default) throws {
        var info = cpng_info()
        var message = [CChar](repeating: 0, count: 256)
        var made: OpaquePointer?
        let code = message.withUnsafeMutableBufferPointer { text in
            cpng_row_reader_open(
                path, UInt32(clamping: max(0, limits.maxWidth)), UInt32(clamping: max(0, limits.maxHeight)),
                UInt64(clamping: max(0, limits.maxPixels)), &info, &made, text.baseAddress, text.count)
        }
        guard code == Int32(CPNG_OK), let made else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            switch code {
            case Int32(CPNG_ERR_NOT_PNG): throw ImagingError.notPNG
            case Int32(CPNG_ERR_TOO_LARGE):
                throw ImagingError.imageTooLarge(width: Int(info.width), height: Int(info.height))
            default: throw ImagingError.invalidPNG(text)
            }
        }
        reader = made
        width = Int(info.width)
        height = Int(info.height)
    }

    deinit { cpng_row_reader_free(reader) }

    /// Reads the next row (`width * 4` bytes of RGBA) into `row`.
    public func read(into row: UnsafeMutableRawBufferPointer) throws {
        guard rowsRead < height, row.count >= width * 4, let base = row.baseAddress else {
            throw ImagingError.invalidPNG("no row left, or the row buffer is too small")
        }
        var message = [CChar](repeating: 0, count: 256)
        let code = message.withUnsafeMutableBufferPointer { text in
            cpng_row_reader_row(reader, base.assumingMemoryBound(to: UInt8.self), text.baseAddress, text.count)
        }
        guard code == Int32(CPNG_OK) else {
            if code == Int32(CPNG_ERR_TRUNCATED) { throw ImagingError.truncatedPNG }
            throw ImagingError.invalidPNG(
                String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        rowsRead += 1
    }
}
