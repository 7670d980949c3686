import ArgumentParser
import Foundation
import LongCatTrain

struct TrainReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-report",
        abstract: "Plot a training log (SVG: loss, FFN experts per token against K_e, R_g, hidden-state norm, speed) with a markdown summary; --compare sets runs side by side against training FLOPs.")

    @Option(name: .long, help: "The training log (JSON lines from longcat train --log).")
    var log: String
    @Option(name: .long, help: "Output directory for the plots and summary.md.")
    var out: String
    @Option(name: .long, help: "Another run's log to compare with (repeatable): compare.svg plots each run's loss against training FLOPs and compare.md tabulates them. Runs are named by their log's directory.")
    var compare: [String] = []

    func run() throws {
        let report = try TrainingReport(log: log)
        try report.write(to: out)
        print(report.summary)
        Console.progress("wrote \(out): loss.svg, experts.svg, router-balance.svg, hidden.svg, speed.svg, summary.md")
        guard !compare.isEmpty else { return }
        let runs = try ([log] + compare).map { path in
            (name: URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent, report: try TrainingReport(log: path))
        }
        let (svg, table) = TrainingReport.comparison(runs)
        let dir = URL(fileURLWithPath: out)
        try Data(svg.utf8).write(to: dir.appendingPathComponent("compare.svg"))
        try Data(table.utf8).write(to: dir.appendingPathComponent("compare.md"))
        print(table)
        Console.progress("wrote \(out): compare.svg, compare.md")
    }
}
