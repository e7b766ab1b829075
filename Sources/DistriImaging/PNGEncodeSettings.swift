import CPNG

/// How covers are encoded: zlib level, PNG row filter and zlib strategy.
///
/// Encoding the cover dominates the cost of sealing an image, so the default was chosen by measurement
/// (see `PNGEncodeSettings.default`).
public struct PNGEncodeSettings: Sendable, Equatable {
    /// PNG row filters offered to libpng (it picks per row when more than one is allowed).
    public enum Filter: Sendable, Equatable {
        /// The filter types of the PNG specification.
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
        /// zlib's `Z_DEFAULT_STRATEGY`, `Z_FILTERED`, `Z_HUFFMAN_ONLY`, `Z_RLE` and `Z_FIXED`.
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
    /// The row filters libpng may use.
    public var filter: Filter
    /// zlib's strategy.
    public var strategy: Strategy

    /// Settings with the given values.
    public init(level: Int, filter: Filter, strategy: Strategy) {
        self.level = min(9, max(0, level))
        self.filter = filter
        self.strategy = strategy
    }

    /// The measured default: zlib level 1, SUB filter, Z_RLE strategy.
    ///
    /// Measured on this project's 2-core Linux build machine (release build, libpng 1.6.39, zlib 1.2.13)
    /// encoding a 1444×1080 generated cover with a 1.17 MB sealed image embedded (6.24 MB of RGBA):
    ///
    ///     level 1 none  default   38 MB/s  64% of raw     level 1 sub  rle   57 MB/s  53% of raw
    ///     level 1 sub   default   37 MB/s  61% of raw     level 1 up   rle   59 MB/s  53% of raw
    ///     level 1 all   default   27 MB/s  59% of raw     level 1 none rle   60 MB/s  74% of raw
    ///     level 6 sub   default   12 MB/s  59% of raw     level 6 all  rle   34 MB/s  51% of raw
    ///     level 6 all   filtered   7 MB/s  52% of raw
    ///
    /// With a noisy cover LZ77 matches are rare, so Z_RLE (distance-1 matches only) is ~1.5× faster than
    /// the default strategy *and* smaller once SUB/UP have turned gradients into runs; its speed barely
    /// depends on the level. SUB and UP tie; SUB needs no previous row.
    public static let `default` = PNGEncodeSettings(level: 1, filter: .sub, strategy: .rle)
}
