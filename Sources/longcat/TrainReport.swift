import ArgumentParser
import Foundation
import LongCatTrain

struct TrainReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-report",
        abstract: "Plot a training log (SVG: loss, FFN experts per token against K_e, R_g, hidden-state norm, speed) with a markdown summary.")

    @Option(name: .long, help: "The training log (JSON lines from longcat train --log).")
    var log: String
    @Option(name: .long, help: "Output directory for the plots and summary.md.")
    var out: String

    func run() throws {
        let report = try TrainingReport(log: log)
        try report.write(to: out)
        print(report.summary)
        Console.progress("wrote \(out): loss.svg, experts.svg, router-balance.svg, hidden.svg, speed.svg, summary.md")
    }
}
