import Foundation
import LongCatEngine
import LongCatModel

/// Shows a long operation's progress on stderr: done of total, the rate and the time left, a line a second, and
/// the stage's last line when it took that long; a stage done within a second prints nothing.
final class ProgressMeter {
    private var stage = ""
    private var stageStart = DispatchTime.now()
    private var lastLine: Double?

    func report(_ r: ProgressReport) {
        if r.stage != stage {
            (stage, stageStart, lastLine) = (r.stage, .now(), nil)
        }
        let elapsed = secondsSince(stageStart)
        let finished = r.done >= r.total
        guard elapsed - (lastLine ?? 0) >= 1 || (finished && lastLine != nil) else { return }
        lastLine = elapsed
        Console.progress(Self.line(r, elapsed: elapsed))
    }

    static func line(_ r: ProgressReport, elapsed: Double) -> String {
        let percent = r.total > 0 ? 100 * Double(r.done) / Double(r.total) : 100
        let rate = elapsed > 0 ? Double(r.done) / elapsed : 0
        var text: String
        switch r.unit {
        case .bytes:
            text = "\(r.stage): \(Formatting.bytes(r.done)) of \(Formatting.bytes(r.total)) (\(Int(percent))%)"
            if elapsed > 0 { text += ", \(Formatting.bytes(Int(rate)))/s" }
        case .items(let name):
            text = "\(r.stage): \(r.done)/\(r.total) \(name) (\(Int(percent))%)"
            if elapsed > 0 { text += String(format: ", %.1f %@/s", rate, name) }
        }
        if r.done >= r.total {
            text += String(format: " in %.1f s", elapsed)
        } else if rate > 0 {
            text += ", about \(Formatting.duration(Double(r.total - r.done) / rate)) left"
        }
        return text
    }
}
