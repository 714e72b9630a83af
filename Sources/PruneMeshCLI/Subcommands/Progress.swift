import Foundation
import Learner

/// A one-line progress bar on standard error, drawn only when it is a terminal.
struct ProgressBar {
    let enabled: Bool
    private var lastDraw = 0.0

    init(enabled: Bool) {
        self.enabled = enabled && isatty(2) != 0
    }

    mutating func update(_ p: StepProgress, label: String) {
        guard enabled else { return }
        let now = MonotonicClock.seconds()
        guard p.step == p.stepsInEpoch || now - lastDraw > 0.1 else { return }
        lastDraw = now
        let width = 30
        let filled = width * p.step / max(1, p.stepsInEpoch)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(
            Data(
                String(
                    format: "\r%@ epoch %d [%@] %d/%d loss %.4f", label, p.epoch, bar,
                    p.step, p.stepsInEpoch, p.loss
                ).utf8))
        if p.step == p.stepsInEpoch { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
    }
}

/// Prints a report as one JSON object with snake_case keys (the documented interface).
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Writes a line to standard error (human progress that must not mix with JSON on stdout).
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A figure as a whole number for people; `Int(_:)` would trap on one that is not finite or does
/// not fit (a rate over a zero interval, a huge value in a node's status answer).
func whole(_ value: Double) -> String {
    guard value.isFinite, value.magnitude < 9.2e18 else { return value.isNaN ? "n/a" : (value > 0 ? "∞" : "-∞") }
    return String(Int(value.rounded()))
}
