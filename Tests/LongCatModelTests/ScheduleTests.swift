import LongCatModel
import LongCatTensor
import LongCatTestSupport
import XCTest

/// Other schedules of the same math give the same numbers: running the MoE branch beside the dense path,
/// and the zero-skip ablation (identity picks pay for a dummy expert whose result is discarded).
final class ScheduleTests: XCTestCase {
    func logits(_ model: LongCatModel, _ tokens: [Int], routing: RoutingRecorder? = nil, schedule: ForwardSchedule = .standard) throws -> [Float] {
        try model.forward(tokens: tokens, cache: KVCache(config: model.config), logits: .all, routing: routing, schedule: schedule)
    }

    func testOverlappedMoEAndNoZeroSkipGiveIdenticalLogits() throws {
        let saved = Parallel.threadCount
        Parallel.threadCount = 2  // overlap needs two threads, even on a one-core runner
        defer { Parallel.threadCount = saved }
        for name in Fixtures.modelNames {
            let model = try LongCatModel(directory: Fixtures.path(name))
            let tokens = try Fixtures.expected(name).cases[0].inputIds
            let routing = RoutingRecorder(keepChoices: true)
            let plain = try logits(model, tokens, routing: routing)
            let identityPicks = routing.choices.flatMap { $0 }.flatMap(\.experts).filter { $0 >= model.config.numExperts }.count
            XCTAssertGreaterThan(identityPicks, 0, "\(name): the ablation must have identity picks to pay for")
            // Each layer's pass runs every distinct FFN expert its tokens chose, once.
            let distinct = routing.choices.reduce(0) { sum, layer in
                sum + Set(layer.flatMap(\.experts).filter { $0 < model.config.numExperts }).count
            }
            XCTAssertEqual(routing.moePasses, model.config.numLayers, "\(name)")
            XCTAssertEqual(routing.expertRuns, distinct, "\(name): expert runs")

            XCTAssertEqual(try logits(model, tokens, schedule: ForwardSchedule(overlapsMoE: true)), plain, "\(name): overlapped MoE")
            // The ablation runs a dummy expert per identity pick: more expert runs, the same numbers.
            let ablation = RoutingRecorder()
            XCTAssertEqual(try logits(model, tokens, routing: ablation, schedule: ForwardSchedule(computesIdentityExperts: true)), plain,
                           "\(name): dummy experts for \(identityPicks) identity picks")
            XCTAssertGreaterThan(ablation.expertRuns, routing.expertRuns, "\(name): the ablation pays for identity picks")
        }
    }
}
