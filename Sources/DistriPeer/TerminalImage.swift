import DistriImaging

/// Shows an image in a terminal: ANSI 24-bit colours, two pixel rows per text line (an upper half
/// block with the top pixel as foreground and the bottom one as background), scaled down to fit.
public enum TerminalImage {
    /// The image as text at most `columns` characters wide (transparent pixels over black).
    public static func render(_ image: RGBAImage, columns: Int) -> String {
        let width = max(1, min(columns, image.width))
        let scale = Double(image.width) / Double(width)
        let rows = max(1, Int((Double(image.height) / scale).rounded(.down)))
        var text = ""
        for line in 0..<((rows + 1) / 2) {
            for column in 0..<width {
                let top = average(image, column: column, row: 2 * line, scale: scale)
                let bottom =
                    2 * line + 1 < rows ? average(image, column: column, row: 2 * line + 1, scale: scale) : (0, 0, 0)
                text +=
                    "\u{1B}[38;2;\(top.0);\(top.1);\(top.2)m\u{1B}[48;2;\(bottom.0);\(bottom.1);\(bottom.2)m\u{2580}"
            }
            text += "\u{1B}[0m\n"
        }
        return text
    }

    /// The mean colour of the source pixels under one output pixel (at most 4 x 4 samples).
    private static func average(_ image: RGBAImage, column: Int, row: Int, scale: Double) -> (Int, Int, Int) {
        let x0 = Int(Double(column) * scale)
        let y0 = Int(Double(row) * scale)
        let span = max(1, Int(scale))
        let step = max(1, span / 4)
        var sum = (0, 0, 0)
        var count = 0
        for y in stride(from: y0, to: min(image.height, y0 + span), by: step) {
            for x in stride(from: x0, to: min(image.width, x0 + span), by: step) {
                let index = (y * image.width + x) * 4
                let alpha = Int(image.pixels[index + 3])
                sum.0 += Int(image.pixels[index]) * alpha / 255
                sum.1 += Int(image.pixels[index + 1]) * alpha / 255
                sum.2 += Int(image.pixels[index + 2]) * alpha / 255
                count += 1
            }
        }
        guard count > 0 else { return (0, 0, 0) }
        return (sum.0 / count, sum.1 / count, sum.2 / count)
    }
}
