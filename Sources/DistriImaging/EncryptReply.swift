/// The bytes the cloud's `Encrypt` service answers with, read back by the peer front end. Pure.
///
/// Layout (big-endian): magic `DENC`, version 1, key length (u16) and the serialized ``ImageKey``,
/// cover width and height (u32 each), 1 when the cover was generated, then the cover PNG to the end.
public enum EncryptReply {
    static let magic: [UInt8] = Array("DENC".utf8)
    static let version: UInt8 = 1

    /// The reply carrying `sealed`.
    public static func encode(_ sealed: SealedImage) -> [UInt8] {
        let key = sealed.key.serialized()
        var out = magic + [version]
        out.reserveCapacity(16 + key.count + sealed.png.count)
        out += [UInt8(key.count >> 8), UInt8(key.count & 0xFF)] + key
        for value in [sealed.width, sealed.height] {
            out += [
                UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF),
            ]
        }
        out.append(sealed.coverWasGenerated ? 1 : 0)
        out += sealed.png
        return out
    }

    /// Reads a reply; a reply that is not one gives `malformedPayload` saying why.
    public static func decode(_ bytes: [UInt8]) throws(ImagingError) -> SealedImage {
        guard bytes.count >= 7, Array(bytes[0..<4]) == magic else {
            throw .malformedPayload("not an Encrypt reply (no DENC header)")
        }
        guard bytes[4] == version else { throw .unsupportedVersion(Int(bytes[4])) }
        let keyLength = Int(bytes[5]) << 8 | Int(bytes[6])
        let keyEnd = 7 + keyLength
        guard bytes.count >= keyEnd + 9 else { throw .malformedPayload("the Encrypt reply is truncated") }
        let key: ImageKey
        do {
            key = try ImageKey(serialized: Array(bytes[7..<keyEnd]))
        } catch let error as ImagingError {
            throw error
        } catch {
            throw .invalidKey("\(error)")
        }
        func u32(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        return SealedImage(
            png: Array(bytes[(keyEnd + 9)...]), key: key, coverWasGenerated: bytes[keyEnd + 8] == 1,
            width: u32(keyEnd), height: u32(keyEnd + 4))
    }
}
