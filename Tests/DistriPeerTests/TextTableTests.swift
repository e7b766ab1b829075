import DistriCommandLine
import Testing

@Suite struct TextTableTests {
    @Test("a table fits 100 columns: the last column is cut first, with an ellipsis; short tables are untouched")
    func fitsTheWidth() {
        let error =
            "cannot reach 127.0.0.1:7003: the connection was reset (nothing listens there, or a firewall drops it)"
        let table = TextTable.render(
            headers: ["node", "id", "recv", "error"],
            rows: [["127.0.0.1:7001", "node-1", "12", ""], ["127.0.0.1:7003", "-", "-", error]])
        let lines = table.split(separator: "\n")
        #expect(lines.allSatisfy { $0.count <= 100 }, "\(table)")
        #expect(lines.last?.hasSuffix("…") == true && lines.last?.hasPrefix("127.0.0.1:7003  -") == true)
        #expect(lines[2] == "127.0.0.1:7001  node-1  12", "no trailing spaces: \(lines[2])")

        let small = TextTable.render(headers: ["a", "b"], rows: [["1", "2"]])
        #expect(small == "a  b\n-  -\n1  2")
    }

    @Test("when the last column alone cannot make it fit, the widest columns give up characters too")
    func widestColumnsShrink() {
        let wide = String(repeating: "x", count: 80)
        let table = TextTable.render(headers: ["first", "second", "last"], rows: [[wide, wide, "short and long"]])
        #expect(table.split(separator: "\n").allSatisfy { $0.count <= 100 }, "\(table)")
        #expect(table.contains("x…"))
    }
}
