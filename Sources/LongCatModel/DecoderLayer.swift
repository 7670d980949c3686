/// The ScMoE decoder layer as a sequence of operations, written once: inference runs it on arrays with the KV cache
/// and absorbed MLA (LongCatModel), training on its tape with every activation kept (LongCatTrain). The MoE branch
/// reads the first post-attention norm, runs beside the dense path, and joins at the end.
public protocol DecoderLayerOperations {
    associatedtype Activation

    func inputNorm(_ x: Activation, layer: Int, _ i: Int) -> Activation
    func postAttentionNorm(_ x: Activation, layer: Int, _ i: Int) -> Activation
    /// MLA sublayer `i` (0 or 1) of `layer`.
    func attention(_ x: Activation, layer: Int, _ i: Int) -> Activation
    /// Dense MLP `i` (0 or 1) of `layer`.
    func mlp(_ x: Activation, layer: Int, _ i: Int) -> Activation
    /// Router, FFN experts and identity experts.
    func moe(_ x: Activation, layer: Int) -> Activation
    func add(_ a: Activation, _ b: Activation) -> Activation
    /// Runs both branches (one after the other, or side by side) and returns (MoE, dense).
    func branches(moe: () -> Activation, dense: () -> Activation) -> (Activation, Activation)
}

extension DecoderLayerOperations {
    public func decoderLayer(_ x: Activation, layer l: Int) -> Activation {
        let hidden = add(x, attention(inputNorm(x, layer: l, 0), layer: l, 0))
        let normed = postAttentionNorm(hidden, layer: l, 0)
        let (shortcut, dense) = branches(moe: { moe(normed, layer: l) }, dense: {
            var h = add(hidden, mlp(normed, layer: l, 0))
            h = add(h, attention(inputNorm(h, layer: l, 1), layer: l, 1))
            return add(h, mlp(postAttentionNorm(h, layer: l, 1), layer: l, 1))
        })
        return add(dense, shortcut)
    }

    /// One branch after the other: the MoE branch first.
    public func sequentialBranches(moe: () -> Activation, dense: () -> Activation) -> (Activation, Activation) {
        let m = moe()
        return (m, dense())
    }
}
