import DistriImaging
import Testing

@Suite struct SystemLibraryTests {
    @Test("OpenSSL 3 and libpng 1.6 are linked")
    func versions() {
        #expect(SystemLibraries.openSSLVersion.hasPrefix("OpenSSL 3"))
        #expect(SystemLibraries.libpngVersion.hasPrefix("1.6"))
    }
}
