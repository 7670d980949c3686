import Foundation
import LongCatTrain
import XCTest

/// train-report: plots that parse as SVG, and a summary whose steady-state figures are the log's.
final class TrainingReportTests: XCTestCase {
    func testReportOfALog() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-report-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // 10 steps: layer 0 uses 2 + (step mod 2) * 0.5 FFN experts per token, so its last fifth (steps 8, 9) has
        // mean 2.25 and standard deviation 0.25.
        let lines = (0..<10).map { t -> String in
            let eval = t == 9 ? ", \"eval_loss\": 3.0, \"eval_bits_per_byte\": 1.5" : ""
            return """
                {"step": \(t), "ce_loss": \(5.0 - 0.1 * Double(t)), "tokens_per_second": 100, "mfu": 0.2, "hidden_rms": 1, "hidden_max": 3, \
                "target_ffn_experts": 2.25\(eval), "layers": [{"ffn_experts_per_token": \(2 + Double(t % 2) * 0.5), "router_gradient_balance": 0.05, "router_similarity": 0.1}]}
                """
        }
        let log = dir.appendingPathComponent("log.jsonl")
        try Data(lines.joined(separator: "\n").utf8).write(to: log)
        let report = try TrainingReport(log: log.path)
        try report.write(to: dir.appendingPathComponent("out").path)
        for name in ["loss.svg", "experts.svg", "router-balance.svg", "hidden.svg", "speed.svg"] {
            // Well-formed enough to check without an XML library: one svg element around elements that all close.
            let svg = try String(contentsOf: dir.appendingPathComponent("out/" + name), encoding: .utf8)
            XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.hasSuffix("</svg>\n"), name)
            let opened = svg.components(separatedBy: "<").count - 1, closed = svg.components(separatedBy: "</").count - 1
            XCTAssertEqual(opened - closed, closed + svg.components(separatedBy: "/>").count - 1, "\(name): every element closes")
            XCTAssertTrue(svg.contains("<polyline"), name)
        }
        let summary = report.summary
        XCTAssertTrue(summary.contains("| 0 | 2.250 | 0.250 | 2.25 | 0.05 | 0.100 |"), summary)
        XCTAssertTrue(summary.contains("last evaluation (step 9): 3.0000 nats per token, 1.500 bits per byte"), summary)
        XCTAssertTrue(summary.contains("cross-entropy, mean over the last fifth: 4.1500"), summary)
        try Data("{\"step\": 0}\nnot json\n".utf8).write(to: log)
        XCTAssertThrowsError(try TrainingReport(log: log.path)) { XCTAssertTrue("\($0)".contains("log.jsonl:2"), "\($0)") }
    }

    /// --compare: each run's totals (steps, tokens, FLOPs summed from the per-step figures, steady-state experts, the
    /// last evaluation) in the table, and its curves plotted against cumulative FLOPs.
    func testComparisonOfTwoRuns() throws {
        func report(flopsPerStep: Double, experts: Double, eval: Double) throws -> TrainingReport {
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-compare-\(UUID()).jsonl")
            defer { try? FileManager.default.removeItem(at: log) }
            let lines = (0..<5).map { t in
                let evalField = t == 4 ? ", \"eval_loss\": \(eval), \"eval_bits_per_byte\": \(eval / 2)" : ""
                return "{\"step\": \(t), \"ce_loss\": 4, \"tokens\": 100, \"flops\": \(flopsPerStep)\(evalField), \"layers\": [{\"ffn_experts_per_token\": \(experts)}]}"
            }
            try Data(lines.joined(separator: "\n").utf8).write(to: log)
            return try TrainingReport(log: log.path)
        }
        let (svg, table) = TrainingReport.comparison([("zc", try report(flopsPerStep: 1e9, experts: 2.5, eval: 3.25)),
                                                       ("no-zc", try report(flopsPerStep: 2e9, experts: 4, eval: 3.125))])
        XCTAssertTrue(table.contains("| zc | 5 | 500 | 5e+09 | 2.50 | 3.2500 | 1.625 |"), table)
        XCTAssertTrue(table.contains("| no-zc | 5 | 500 | 1e+10 | 4.00 | 3.1250 | 1.562 |"), table)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 4, "train and eval curves of both runs")
        XCTAssertTrue(svg.contains("training FLOPs") && svg.contains("no-zc eval"), svg)
    }
}
