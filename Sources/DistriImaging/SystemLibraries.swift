import COpenSSL
import CPNG

/// Versions of the system libraries the imaging code runs on (libssl-dev and libpng-dev).
public enum SystemLibraries {
    /// OpenSSL's version text, for example `OpenSSL 3.0.19 ...`.
    public static var openSSLVersion: String {
        guard let text = OpenSSL_version(numericCast(OPENSSL_VERSION)) else { return "unknown" }
        return String(cString: text)
    }

    /// libpng's version, for example `1.6.39`.
    public static var libpngVersion: String {
        guard let text = png_get_libpng_ver(nil) else { return "unknown" }
        return String(cString: text)
    }
}
