import Foundation

/// The worked examples of a DocC catalog, read from the source tree, so that the spec and the
/// code cannot drift apart. An example is a fenced block whose first line names it (a comment
/// in every format used, so DocC shows it and the parsers skip it):
///
///     ```hex
///     # example: envelope-leave
///     50 4d 53 48   # magic
///     ```
///
/// `hex` blocks: hex digits, whitespace ignored, `#` starts a comment to the end of the line.
/// `fields` blocks (any language): one `name = value` per line, `#` comments.
/// `json` blocks: the JSON text after the title line.
/// One support target (`Tests/SpecExamples`) that every test target checking a catalog depends on.
public enum SpecExamples {
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// The repository root: three levels above this file (`Tests/<Target>/SpecExamples.swift`).
    public static func root(_ file: String = #filePath) -> URL {
        URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The text of the block titled `title` in the catalog file at `path` (relative to the root).
    public static func block(_ title: String, in path: String) throws -> String {
        let url = root().appendingPathComponent(path)
        let text = try String(contentsOf: url, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let marker = "# example: \(title)"
        var found: [String]?
        var i = 0
        while i + 1 < lines.count {
            let line = lines[i].trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("```") && lines[i + 1].trimmingCharacters(in: .whitespaces) == marker {
                guard found == nil else { throw Missing(description: "\(path): two blocks titled \(title)") }
                var body: [String] = []
                i += 1
                while i < lines.count, !lines[i].trimmingCharacters(in: .whitespaces).hasPrefix("```") {
                    body.append(String(lines[i]))
                    i += 1
                }
                found = body
            }
            i += 1
        }
        guard let found else { throw Missing(description: "\(path): no block titled \(title)") }
        return found.joined(separator: "\n")
    }

    public static func stripComment(_ line: Substring) -> Substring {
        if let hash = line.firstIndex(of: "#") { return line[..<hash] }
        return line
    }

    /// The bytes of a `hex` block.
    public static func hex(_ title: String, in path: String) throws -> [UInt8] {
        var digits: [UInt8] = []
        for line in try block(title, in: path).split(separator: "\n") {
            for c in stripComment(line).utf8 where c != 32 && c != 9 {
                guard let v = hexValue(c) else { throw Missing(description: "\(path) \(title): not hex: \(line)") }
                digits.append(v)
            }
        }
        guard digits.count % 2 == 0 else { throw Missing(description: "\(path) \(title): odd number of hex digits") }
        return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }

    /// The `name = value` lines of a block.
    public static func fields(_ title: String, in path: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for line in try block(title, in: path).split(separator: "\n") {
            let content = stripComment(line).trimmingCharacters(in: .whitespaces)
            if content.isEmpty { continue }
            guard let eq = content.firstIndex(of: "=") else { throw Missing(description: "\(path) \(title): no '=' in \(line)") }
            let name = content[..<eq].trimmingCharacters(in: .whitespaces)
            let value = content[content.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard out[name] == nil else { throw Missing(description: "\(path) \(title): \(name) twice") }
            out[name] = value
        }
        return out
    }

    /// The text of a `json` block: the lines after its title line (JSON has no comments).
    public static func json(_ title: String, in path: String) throws -> String {
        try block(title, in: path).split(separator: "\n", omittingEmptySubsequences: false).dropFirst().joined(separator: "\n")
    }

    /// The path of the operations catalog (`prunemesh status --json`'s worked example).
    public static let operations = "Sources/PruneMeshCLI/PruneMeshCLI.docc/Operations.md"

    public static func hexString(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
}
