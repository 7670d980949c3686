import Foundation

/// `longcat train-report`: plots (SVG) and a markdown summary of a training log — losses, FFN experts per token per
/// layer against the target, the router-gradient balance, the hidden-state norm and the speed.
public struct TrainingReport {
    public struct Step {
        var step: Int
        var values: [String: Double]
        var layers: [[String: Double]]
    }

    public let steps: [Step]
    public let target: Double?

    /// Reads the log's lines; a line that is not a step's JSON object is an error naming its number.
    public init(log path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError.badData("cannot read \(path)") }
        var steps: [Step] = [], target: Double?
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let step = object["step"] as? Int else {
                throw TrainingError.badData("\(path):\(n + 1) is not a training log line")
            }
            var values: [String: Double] = [:]
            for (k, v) in object { if let d = (v as? NSNumber)?.doubleValue { values[k] = d } }
            target = target ?? values["target_ffn_experts"]
            let layers = (object["layers"] as? [[String: Any]] ?? []).map { layer in
                layer.compactMapValues { ($0 as? NSNumber)?.doubleValue }
            }
            steps.append(Step(step: step, values: values, layers: layers))
        }
        guard !steps.isEmpty else { throw TrainingError.badData("\(path) holds no steps") }
        self.steps = steps
        self.target = target
    }

    /// Writes loss.svg, experts.svg, router-balance.svg, hidden.svg, speed.svg and summary.md into `directory`.
    public func write(to directory: String) throws {
        let dir = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let layers = steps.map(\.layers.count).max() ?? 0
        func series(_ key: String) -> [(Double, Double)] { steps.compactMap { s in s.values[key].map { (Double(s.step), $0) } } }
        func perLayer(_ key: String) -> [(String, [(Double, Double)])] {
            (0..<layers).map { l in ("layer \(l)", steps.compactMap { s in l < s.layers.count ? s.layers[l][key].map { (Double(s.step), $0) } : nil }) }
        }
        let plots: [(String, LinePlot)] = [
            ("loss.svg", LinePlot(title: "Loss", y: "nats per token", series: [("train (cross-entropy)", series("ce_loss")), ("eval", series("eval_loss"))])),
            ("experts.svg", LinePlot(title: "FFN experts per token", y: "experts", series: perLayer("ffn_experts_per_token"), reference: target.map { ("target K_e", $0) })),
            ("router-balance.svg", LinePlot(title: "Router-gradient balance R_g", y: "R_g", series: perLayer("router_gradient_balance"), reference: ("0.1", 0.1))),
            ("hidden.svg", LinePlot(title: "Last layer's hidden state", y: "magnitude", series: [("RMS", series("hidden_rms")), ("max |h|", series("hidden_max"))])),
            ("speed.svg", LinePlot(title: "Speed", y: "tokens per second", series: [("tokens/s", series("tokens_per_second"))])),
        ]
        for (name, plot) in plots { try Data(plot.svg.utf8).write(to: dir.appendingPathComponent(name)) }
        try Data(summary.utf8).write(to: dir.appendingPathComponent("summary.md"))
    }

    /// Training compute spent up to and including each step (the log's per-step `flops`, summed).
    var cumulativeFLOPs: [Double] {
        var total = 0.0
        return steps.map { total += $0.values["flops"] ?? 0; return total }
    }

    /// Runs side by side (e.g. with and without zero-computation experts): held-out loss and a running mean of the
    /// training cross-entropy against the training FLOPs spent, as one SVG, and a markdown table of each run's totals.
    public static func comparison(_ runs: [(name: String, report: TrainingReport)]) -> (svg: String, table: String) {
        var series: [(String, [(Double, Double)])] = []
        var table = "| run | steps | tokens | training FLOPs | FFN experts per token (last fifth) | last eval loss | last eval bits/byte |\n"
        table += "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        for (name, report) in runs {
            let flops = report.cumulativeFLOPs
            let ce = report.steps.map { $0.values["ce_loss"] ?? .nan }
            let window = 50
            let smoothed = ce.indices.map { i in ce[max(0, i - window + 1)...i].reduce(0, +) / Double(i - max(0, i - window + 1) + 1) }
            series.append(("\(name) train (mean of \(window))", Array(zip(flops, smoothed))))
            series.append(("\(name) eval", zip(flops, report.steps).compactMap { f, s in s.values["eval_loss"].map { (f, $0) } }))
            let tail = report.lastFifth.flatMap { $0.layers.compactMap { $0["ffn_experts_per_token"] } }
            let experts = tail.isEmpty ? Double.nan : tail.reduce(0, +) / Double(tail.count)
            let eval = report.steps.last { $0.values["eval_loss"] != nil }
            table += String(format: "| %@ | %d | %.3g | %.3g | %.2f | %.4f | %.3f |\n", name, report.steps.count,
                            report.steps.reduce(0) { $0 + ($1.values["tokens"] ?? 0) }, flops.last ?? .nan, experts,
                            eval?.values["eval_loss"] ?? .nan, eval?.values["eval_bits_per_byte"] ?? .nan)
        }
        let plot = LinePlot(title: "Loss against training compute", y: "nats per token", series: series, x: "training FLOPs")
        return (plot.svg, table)
    }

    /// The last fifth of the run: where a controller's steady state is read.
    var lastFifth: ArraySlice<Step> { steps.suffix(max(1, steps.count / 5)) }

    public var summary: String {
        func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }
        func median(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.sorted()[v.count / 2] }
        func std(_ v: [Double]) -> Double { let m = mean(v); return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(v.count, 1))).squareRoot() }
        let tail = Array(lastFifth)
        var out = "# Training report\n\n"
        out += String(format: "- steps: %d (%d to %d)\n", steps.count, steps.first!.step, steps.last!.step)
        out += String(format: "- cross-entropy, mean over the last fifth: %.4f (first step %.4f)\n",
                      mean(tail.compactMap { $0.values["ce_loss"] }), steps.first!.values["ce_loss"] ?? .nan)
        if let eval = steps.last(where: { $0.values["eval_loss"] != nil }) {
            out += String(format: "- last evaluation (step %d): %.4f nats per token, %.3f bits per byte\n", eval.step,
                          eval.values["eval_loss"]!, eval.values["eval_bits_per_byte"] ?? .nan)
        }
        out += String(format: "- speed: median %.0f tokens/s, MFU %.1f%%\n", median(steps.compactMap { $0.values["tokens_per_second"] }),
                      100 * median(steps.compactMap { $0.values["mfu"] }))
        out += "\n| layer | FFN experts per token, last fifth: mean | std | target K_e | R_g, last fifth: median | router similarity, last |\n"
        out += "| --- | --- | --- | --- | --- | --- |\n"
        for l in 0..<(steps.last!.layers.count) {
            let experts = tail.compactMap { l < $0.layers.count ? $0.layers[l]["ffn_experts_per_token"] : nil }
            let balance = tail.compactMap { l < $0.layers.count ? $0.layers[l]["router_gradient_balance"] : nil }
            out += String(format: "| %d | %.3f | %.3f | %@ | %.3g | %.3f |\n", l, mean(experts), std(experts),
                          target.map { String(format: "%.3g", $0) } ?? "-", median(balance), steps.last!.layers[l]["router_similarity"] ?? .nan)
        }
        return out
    }
}

/// A small SVG line chart: steps (or another quantity) on x, one polyline per series, an optional horizontal reference line.
struct LinePlot {
    var title: String
    var y: String
    var series: [(String, [(Double, Double)])]
    var reference: (String, Double)? = nil
    var x = "step"

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    var svg: String {
        let (width, height, left, right, top, bottom) = (720.0, 360.0, 70.0, 170.0, 40.0, 50.0)
        let points = series.flatMap(\.1) + (reference.map { [(series.flatMap(\.1).first?.0 ?? 0, $0.1)] } ?? [])
        let xs = points.map(\.0), ys = points.map(\.1).filter(\.isFinite)
        let (x0, x1) = (xs.min() ?? 0, max(xs.max() ?? 1, (xs.min() ?? 0) + 1))
        var (y0, y1) = (ys.min() ?? 0, ys.max() ?? 1)
        if y1 - y0 < 1e-12 { (y0, y1) = (y0 - 0.5, y1 + 0.5) }
        let pad = (y1 - y0) * 0.05
        (y0, y1) = (y0 - pad, y1 + pad)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func label(_ v: Double) -> String { abs(v) >= 1000 || (abs(v) < 0.01 && v != 0) ? String(format: "%.2g", v) : String(format: "%.3g", v) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(f(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        for i in 0...4 {
            let yv = y0 + (y1 - y0) * Double(i) / 4, xv = x0 + (x1 - x0) * Double(i) / 4
            s += "<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(py(yv)))\" y2=\"\(f(py(yv)))\" stroke=\"#e5e5e5\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(yv) + 4))\" text-anchor=\"end\">\(label(yv))</text>\n"
            s += "<text x=\"\(f(px(xv)))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">\(x == "step" ? String(Int(xv.rounded())) : label(xv))</text>\n"
        }
        s += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(escape(x))</text>\n"
        s += "<text transform=\"translate(16 \(f(height / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(y))</text>\n"
        var legend = 0
        if let (name, value) = reference {
            s += "<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(py(value)))\" y2=\"\(f(py(value)))\" stroke=\"black\" stroke-dasharray=\"6 4\"/>\n"
            s += "<text x=\"\(f(width - right + 10))\" y=\"\(f(top + 14))\">- - \(escape(name))</text>\n"
            legend += 1
        }
        for (i, (name, points)) in series.enumerated() where !points.isEmpty {
            let color = Self.colors[i % Self.colors.count]
            let path = points.filter { $0.1.isFinite }.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            if points.count == 1 { s += "<circle cx=\"\(f(px(points[0].0)))\" cy=\"\(f(py(points[0].1)))\" r=\"3\" fill=\"\(color)\"/>\n" }
            s += "<text x=\"\(f(width - right + 10))\" y=\"\(f(top + 14 + Double(legend) * 18))\" fill=\"\(color)\">\(escape(name))</text>\n"
            legend += 1
        }
        return s + "</svg>\n"
    }

    func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
