import Foundation
import LongCatTestSupport
import XCTest

/// Reading the model fixtures' expected outputs.
extension Fixtures {
    static let modelNames = ["tiny-fp32", "tiny-bf16-sharded", "tiny-yarn", "tiny-yarn-explicit-factor", "tiny-ngram", "small-fp8"]

    struct Case {
        let inputIds: [Int]
        let logits: [[Float]]
        let greedy: [Int]
    }

    struct RouterLayer {
        let layer: Int
        let indices: [[Int]]
        let weights: [[Float]]
    }

    struct Expected {
        let cases: [Case]
        let router: [RouterLayer]
    }

    static func expected(_ name: String) throws -> Expected {
        let data = try Fixtures.data(name + "/expected.json")
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try XCTUnwrap(json["cases"] as? [[String: Any]]).map { c in
            Case(
                inputIds: c["input_ids"] as! [Int],
                logits: (c["logits"] as! [[Double]]).map { $0.map(Float.init) },
                greedy: c["greedy_new_tokens"] as! [Int])
        }
        let router = try XCTUnwrap(json["router_first_case"] as? [[String: Any]]).map { r in
            RouterLayer(
                layer: r["layer"] as! Int, indices: r["topk_indices"] as! [[Int]],
                weights: (r["topk_weights"] as! [[Double]]).map { $0.map(Float.init) })
        }
        return Expected(cases: cases, router: router)
    }
}
