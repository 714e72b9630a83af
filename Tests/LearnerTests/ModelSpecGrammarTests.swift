import Testing

@testable import Learner

/// The model spec grammar: tanh, conv stride and padding, overlapping pools; canonical forms and
/// the errors for what is not.
@Suite struct ModelSpecGrammarTests {
    /// The end-to-end DP-SGD CNN of Papernot et al. 2021 and Tramèr & Boneh 2021 (their
    /// Fashion-MNIST model), written in the grammar.
    static let papernot = "28x28x1:conv8x16s2p3,tanh,pool2s1,conv4x32s2p0,tanh,pool2s1,dense32,tanh,dense10"

    @Test func thePapernotCNNHasItsShapesAndParameters() throws {
        let spec = try ModelSpec(parsing: Self.papernot)
        #expect(spec.description == Self.papernot)
        let arch = Architecture(spec)
        // 28 → (28 + 6 − 8)/2 + 1 = 14 → pool 2 stride 1: 13 → (13 − 4)/2 + 1 = 5 → 4.
        #expect(
            arch.shapes.map { [$0.height, $0.width, $0.channels] } == [
                [28, 28, 1], [14, 14, 16], [14, 14, 16], [13, 13, 16], [5, 5, 32], [5, 5, 32], [4, 4, 32],
                [1, 1, 32], [1, 1, 32], [1, 1, 10],
            ])
        // (8·8·1 + 1)·16 + (4·4·16 + 1)·32 + (512 + 1)·32 + (32 + 1)·10, PyTorch's count for the model.
        #expect(ModelCost(spec).params == 26_010)
        #expect(arch.paramLayers.map(\.stride) == [2, 2, 1, 1])
        #expect(arch.paramLayers.map(\.padding) == [3, 0, 0, 0])
    }

    @Test(arguments: [
        "28x28x1:conv5x32,relu,pool2,conv5x64,relu,pool2,dense2048,relu,dense10",
        "28x28x1:conv5x16s2,tanh,dense10", // odd kernel: default padding 2 left out
        "28x28x1:conv5x16p0,relu,pool3s2,dense10", // valid conv, 24 → pool 3 stride 2: 11
        "28x28x1:conv4x8s2p1,pool2,dense10", // even kernel: padding always written
        "28x28x1:conv1x4,dense10",
    ])
    func canonicalSpecsRoundTrip(_ text: String) throws {
        #expect(try ModelSpec(parsing: text).description == text)
    }

    @Test(arguments: [
        ("28x28x1:conv8x16s2,tanh,dense10", "even kernel needs its padding"),
        ("28x28x1:conv5x16p2,dense10", "not in canonical form (expected \"28x28x1:conv5x16,dense10\")"),
        ("28x28x1:conv5x16s1,dense10", "not in canonical form"),
        ("28x28x1:pool2s2,dense10", "not in canonical form (expected \"28x28x1:pool2,dense10\")"),
        ("28x28x1:conv3x4s4,dense10", "conv stride 4 must be in 1…3"),
        ("28x28x1:conv3x4p3,dense10", "conv padding 3 must be in 0…2"),
        ("28x28x1:conv3x4s0,dense10", "conv stride 0"),
        ("28x28x1:pool3s4,dense10", "pool3 stride 4 must be in 1…3"),
        ("28x28x1:pool1,dense10", "pool1: the window must be at least 2"),
        ("28x28x1:pool0s0,dense10", "pool0: the window must be at least 2"),
        ("28x28x1:pool3,dense10", "pool3 does not divide 28×28"),
        ("4x4x1:conv15x4p2,dense10", "larger than its 4×4 input"),
        ("4x4x1:pool2s1,pool2s1,pool2s1,pool2s1,dense10", "pool2 is larger than its 1×1 input"),
        ("28x28x1:conv5x16p,dense10", "bad conv layer"),
        ("28x28x1:conv5x16p2s1,dense10", "bad conv layer"), // s before p only
        ("28x28x1:conv5x16s-1,dense10", "bad conv layer"),
        ("28x28x1:conv5x16x3,dense10", "bad conv layer"),
        ("28x28x1:pool2s,dense10", "bad pool layer"),
        ("28x28x1:conv16x4p1,dense10", "conv kernel 16 must be in 1…15"),
        ("28x28x1:tanh2,dense10", "unknown layer \"tanh2\""),
    ])
    func malformedLayersAreRefusedWithTheReason(_ text: String, _ reason: String) {
        do {
            _ = try ModelSpec(parsing: text)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.description.contains(reason), "\(text): \(error.description)")
        }
    }

    /// Initialisation follows the activation: He (gain 2) before ReLU, LeCun (gain 1) before
    /// tanh and for the classifier.
    @Test func initialisationScaleFollowsTheActivation() throws {
        let relu = Model(spec: try ModelSpec(parsing: "12x12x1:conv3x64,relu,pool2,dense256,relu,dense10"), seed: 1)
        let tanh = Model(spec: try ModelSpec(parsing: "12x12x1:conv3x64,tanh,pool2,dense256,tanh,dense10"), seed: 1)
        func std(_ w: [Float]) -> Double { (w.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(w.count)).squareRoot() }
        for (layer, fanIn) in [(0, 9.0), (1, 2304.0)] {
            #expect(abs(std(relu.weights[layer]) / (2 / fanIn).squareRoot() - 1) < 0.05, "relu layer \(layer)")
            #expect(abs(std(tanh.weights[layer]) / (1 / fanIn).squareRoot() - 1) < 0.05, "tanh layer \(layer)")
        }
        #expect(abs(std(tanh.weights[2]) / (1 / 256.0).squareRoot() - 1) < 0.1)
    }
}
