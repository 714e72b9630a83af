import MeshBase
import Testing

@testable import Learner

@Suite struct AggregationTests {
    static let rules: [AggregationRule] = [
        .fedAvg, .trimmedMean(trim: 1), .median, .normClip, .centeredClip(iterations: 3), .multiKrum(excluded: 1),
        .geometricMedian(iterations: 8), .distanceFilter(kappaTenths: 20),
        .sideFilter(kappaTenths: 20),
    ]

    func contribution(_ key: UInt8, _ samples: Int, _ update: [Float]) -> ModelContribution {
        ModelContribution(key: [key], samples: samples, update: update)
    }

    /// Random updates whose coordinates span many magnitudes (so the order of a Float sum would
    /// change its rounding), with signed zeros sprinkled in.
    func randomContributions(count: Int, length: Int, seed: UInt64) -> [ModelContribution] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { i in
            let update: [Float] = (0..<length).map { j in
                if j % 17 == 0 { return g.next() & 1 == 0 ? 0.0 : -0.0 }
                return Float(g.nextGaussian() * [1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1e3, 1e4][Int(g.next() % 9)])
            }
            return ModelContribution(key: [UInt8(i * 37 % 251), 7], samples: 1 + Int(g.next() % 5000), update: update)
        }
    }

    func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    func permutations<T>(_ items: [T]) -> [[T]] {
        guard items.count > 1 else { return [items] }
        return items.indices.flatMap { i -> [[T]] in
            var rest = items
            let head = rest.remove(at: i)
            return permutations(rest).map { [head] + $0 }
        }
    }

    @Test(arguments: rules)
    func everyPermutationGivesTheSameBytes(rule: AggregationRule) throws {
        let base = randomContributions(count: 5, length: 2000, seed: 42)
        let reference = randomContributions(count: 1, length: 2000, seed: 43)[0].update
        let expected = bits(try Aggregation.aggregate(base, rule: rule, reference: reference))
        for order in permutations(base) {
            #expect(bits(try Aggregation.aggregate(order, rule: rule, reference: reference)) == expected)
        }
    }

    /// A contribution whose zeros are -0 instead of +0 is the same contribution numerically; the
    /// aggregate must not depend on which arrived where (the median of an odd count would
    /// otherwise return whichever zero the sort left in the middle).
    @Test(arguments: rules)
    func signedZerosDoNotChangeTheBytes(rule: AggregationRule) throws {
        var a = [contribution(1, 1, [0.0, 1]), contribution(2, 1, [-0.0, 1]), contribution(3, 1, [0.0, 1])]
        var b = [contribution(1, 1, [-0.0, 1]), contribution(2, 1, [0.0, 1]), contribution(3, 1, [-0.0, 1])]
        if rule.contributionsMin > 3 { (a, b) = (a + [contribution(4, 1, [0.0, 1])], b + [contribution(4, 1, [-0.0, 1])]) }
        let x = try Aggregation.aggregate(a, rule: rule), y = try Aggregation.aggregate(b, rule: rule)
        #expect(bits(x) == bits(y))
        #expect(x[0].bitPattern == Float(0).bitPattern)
    }

    @Test func fedAvgWeighsBySamples() throws {
        let r = try Aggregation.aggregate([contribution(2, 3, [5, -2, 0]), contribution(1, 1, [1, 2, -4])], rule: .fedAvg)
        #expect(r == [4, -1, -1])
    }

    /// In Float, 1e8 + 1 − 1e8 is 0 (1e8 + 1 rounds back to 1e8); accumulated in Double and
    /// rounded once the mean is 1/3 to the nearest Float.
    @Test func fedAvgAccumulatesInDoubleAndRoundsOnce() throws {
        let r = try Aggregation.aggregate(
            [contribution(1, 1, [1e8]), contribution(2, 1, [1]), contribution(3, 1, [-1e8])],
            rule: .fedAvg)
        #expect(r[0].bitPattern == Float(1.0 / 3.0).bitPattern)
    }

    @Test func trimmedMeanDropsTheExtremesOfEachCoordinate() throws {
        let cs = [
            contribution(1, 1, [3, 100]), contribution(2, 1000, [-1, 1]), contribution(3, 1, [7, 2]),
            contribution(4, 1, [2, -50]), contribution(5, 1, [1000, 3]),
        ]
        // Per coordinate, sorted: [-1, 2, 3, 7, 1000] → mean(2, 3, 7) = 4; [-50, 1, 2, 3, 100] → 2.
        // Unweighted: node 2's 1000 samples buy it nothing.
        #expect(try Aggregation.aggregate(cs, rule: .trimmedMean(trim: 1)) == [4, 2])
        #expect(try Aggregation.aggregate(cs, rule: .trimmedMean(trim: 2)) == [3, 2])
    }

    @Test func medianOfAnEvenCountIsTheMeanOfTheMiddleTwo() throws {
        let cs = [contribution(1, 1, [1, 5]), contribution(2, 1, [100, 6]), contribution(3, 1, [3, -9]), contribution(4, 1, [2, 7])]
        #expect(try Aggregation.aggregate(cs, rule: .median) == [2.5, 5.5])
        #expect(try Aggregation.aggregate(Array(cs.prefix(3)), rule: .median) == [3, 5])
    }

    @Test func normClipScalesOutliersDownToTheMedianNorm() throws {
        // Norms 5, 1, 10: the median is 5, so [6, 8] becomes [3, 4]; the mean is [2, 3].
        let cs = [contribution(1, 2, [3, 4]), contribution(2, 2, [0, 1]), contribution(3, 2, [6, 8])]
        #expect(try Aggregation.aggregate(cs, rule: .normClip) == [2, 3])
    }

    /// One of four contributions is the honest update negated ×10: FedAvg follows it, the robust
    /// rules stay on the honest side.
    @Test func aPoisonedUpdateSteersFedAvgButNotTheRobustRules() throws {
        var g = SeededGenerator(seed: 3)
        let honest: [[Float]] = (0..<3).map { _ in (0..<500).map { _ in Float(1 + 0.3 * g.nextGaussian()) } }
        let poisoned = honest[0].map { -10 * $0 }
        let cs = (honest + [poisoned]).enumerated().map { contribution(UInt8($0.offset), 1000, $0.element) }
        func mean(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double($1) } / Double(v.count) }
        #expect(mean(try Aggregation.aggregate(cs, rule: .fedAvg)) < -1)
        for rule in [AggregationRule.trimmedMean(trim: 1), .median] {
            #expect(mean(try Aggregation.aggregate(cs, rule: rule)) > 0.8, "\(rule)")
        }
        // Clipped to the median norm, the poison still pulls against the honest three, by at most one part in four.
        let clipped = mean(try Aggregation.aggregate(cs, rule: .normClip))
        #expect(clipped > 0.4 && clipped < 0.6, "\(clipped)")
    }

    @Test func badContributionsAreRefusedWithAReason() {
        func refused(_ cs: [ModelContribution], _ word: String, rule: AggregationRule = .fedAvg) {
            do {
                _ = try Aggregation.aggregate(cs, rule: rule)
                Issue.record("accepted: \(word)")
            } catch {
                #expect(error.problem.contains(word), "\(error.problem)")
            }
        }
        refused([], "no contributions")
        refused([contribution(1, 1, [1]), contribution(1, 2, [2])], "twice")
        refused([contribution(1, 1, [1, 2]), contribution(2, 1, [1])], "values")
        refused([contribution(1, 1, [.nan])], "non-finite")
        refused([contribution(1, 1, [1]), contribution(2, 1, [-.infinity])], "non-finite")
        refused([contribution(1, 0, [1])], "samples")
        refused([contribution(1, Limits.aggregation_contribution_samples_max + 1, [1])], "samples")
        refused([ModelContribution(key: [], samples: 1, update: [1])], "key")
        refused(
            [ModelContribution(key: [UInt8](repeating: 1, count: Limits.aggregation_key_bytes_max + 1), samples: 1, update: [1])], "key")
        refused([contribution(1, 1, [1]), contribution(2, 1, [2])], "at least 3", rule: .trimmedMean(trim: 1))
        refused([contribution(1, 1, [1]), contribution(2, 1, [2]), contribution(3, 1, [2])], "at least 4", rule: .multiKrum(excluded: 1))
        do {
            let two = [contribution(1, 1, [1, 2]), contribution(2, 1, [2, 3])]
            for (reference, word): ([Float], String) in [
                ([1], "reference of 1"), ([0, .nan], "non-finite"), ([.infinity, 0], "non-finite"),
            ] {
                do {
                    _ = try Aggregation.aggregate(two, rule: .centeredClip(iterations: 1), reference: reference)
                    Issue.record("accepted the reference \(reference)")
                } catch {
                    #expect(error.problem.contains(word), "\(error.problem)")
                }
            }
        }
        let many = (0...Limits.aggregation_contributions_count_max).map {
            ModelContribution(key: [UInt8($0 & 255), UInt8($0 >> 8)], samples: 1, update: [1])
        }
        refused(many, "at most")
    }

    @Test func rulesParseAndPrintCanonically() throws {
        for text in [
            "fedavg", "trimmed:1", "trimmed:3", "median", "normclip", "cclip:1", "cclip:100", "krum:1", "krum:2", "geomed:1", "geomed:100",
            "filter:1", "filter:2.5", "filter:100", "sidefilter:2",
        ] {
            #expect(try AggregationRule(parsing: text).description == text)
        }
        #expect(try AggregationRule(parsing: "cclip") == .centeredClip(iterations: 3))
        #expect(try AggregationRule(parsing: "geomed") == .geometricMedian(iterations: 8))
        #expect(try AggregationRule(parsing: "krum:2").contributionsMin == 5)
        #expect(try AggregationRule(parsing: "filter:2.0") == .distanceFilter(kappaTenths: 20))
        for text in [
            "", "mean", "trimmed", "trimmed:0", "trimmed:-1", "trimmed:x", "trimmed:1:2", "trimmed:128", "Median", "cclip:0", "cclip:101",
            "cclip:", "krum", "krum:0", "krum:128", "geomed:0", "geomed:x", "foo:1", "filter", "filter:0.9", "filter:2.55", "filter:100.1",
            "filter:2.", "filter:.5", "filter:-2", "filter:1e1", "filter:+2", "sidefilter", "sidefilter:0", "trimmed:+1", "krum:+2",
            "geomed:+8", "cclip:+3",
        ] {
            #expect(throws: AggregationError.self, "\(text)") { try AggregationRule(parsing: text) }
        }
        #expect(try FederatedRun.Poison(parsing: "negate10") == .negate(scale: 10))
        #expect(try FederatedRun.Poison(parsing: "random100") == .random(scale: 100))
        #expect(try FederatedRun.Poison(parsing: "absent") == .absent)
        #expect(FederatedRun.Poison.negate(scale: 10).apply([1, -2]) == [-10, 20])
        #expect(FederatedRun.Poison.absent.apply([1, -2]) == [0, 0])
        let r = FederatedRun.Poison.random(scale: 3).apply([3, 4])
        #expect(abs(Aggregation.l2Norm(r) - 15) < 1e-5 && r == FederatedRun.Poison.random(scale: 3).apply([3, 4]))
        for text in ["negate", "negate0", "negate-1", "negate1001", "flip10", "random", "random0", "absent1"] {
            #expect(throws: AggregationError.self, "\(text)") { try FederatedRun.Poison(parsing: text) }
        }
    }
}

@Suite struct ModelParameterTests {
    static let spec = try! ModelSpec(parsing: "8x8x1:conv3x6,relu,pool2,conv3x8,relu,pool2,dense12,relu,dense4")

    @Test func flatParametersRoundTripAndFollowTheLayerOrder() {
        let m = Model(spec: Self.spec, seed: 5)
        let flat = m.flatParameters()
        #expect(flat.count == m.cost.params)
        #expect(Array(flat.prefix(m.weights[0].count)) == m.weights[0])
        #expect(Array(flat[m.weights[0].count..<(m.weights[0].count + m.biases[0].count)]) == m.biases[0])
        let back = m.withFlatParameters(flat)
        #expect(back.weights == m.weights && back.biases == m.biases)
    }

    @Test func anUpdateAppliedToItsBaseMovesEveryParameter() {
        let a = Model(spec: Self.spec, seed: 5), b = Model(spec: Self.spec, seed: 6)
        let u = a.update(to: b)
        #expect(u.count == a.cost.params)
        let moved = a.applying(update: u).flatParameters(), target = b.flatParameters()
        for i in target.indices { #expect(abs(moved[i] - target[i]) <= 1e-6 * max(1, abs(target[i]))) }
    }

    /// The tensor-by-tensor update and move are, bit for bit, the flat definitions every node
    /// must agree on: u = b − a and p + u per coordinate in `flatParameters()` order.
    @Test func updateAndMoveAreTheFlatDefinitionsBitForBit() {
        let a = Model(spec: Self.spec, seed: 5), b = Model(spec: Self.spec, seed: 6)
        let pa = a.flatParameters(), pb = b.flatParameters()
        let u = a.update(to: b)
        #expect(u.map(\.bitPattern) == (0..<pa.count).map { (pb[$0] - pa[$0]).bitPattern })
        var g = SeededGenerator(seed: 9, stream: 1)
        let step = (0..<pa.count).map { _ in Float(Double(g.next() % 2001) / 1000 - 1) * 0.01 }
        let moved = a.applying(update: step).flatParameters()
        #expect(moved.map(\.bitPattern) == (0..<pa.count).map { (pa[$0] + step[$0]).bitPattern })
        #expect(a.flatParameters() == pa, "the base model is unchanged")
        // A server rate η: p + (η·u rounded to Float), per coordinate; η = 1 is the plain move.
        let fast = a.applying(update: step, rate: 1.5).flatParameters()
        #expect(fast.map(\.bitPattern) == (0..<pa.count).map { (pa[$0] + 1.5 * step[$0]).bitPattern })
        #expect(fast != moved)
        #expect(a.applying(update: step, rate: 1).flatParameters().map(\.bitPattern) == moved.map(\.bitPattern))
    }

    @Test func serverMomentumKeepsAVelocityAndNoneIsTheAggregate() throws {
        var velocity: [Float]?
        let plain = ServerMomentum.none.step([1, -2], velocity: &velocity)
        #expect(plain == [1, -2] && velocity == nil)
        let m = try #require(ServerMomentum(beta: 0.5, rate: 2))
        #expect(m.step([1, -2], velocity: &velocity) == [2, -4])
        #expect(velocity == [1, -2])
        // v = 0.5·(1, −2) + (3, 0) = (3.5, −1); step 2·v.
        #expect(m.step([3, 0], velocity: &velocity) == [7, -2])
        #expect(velocity == [3.5, -1])
        #expect(ServerMomentum(beta: 1, rate: 1) == nil && ServerMomentum(beta: 0.5, rate: 0) == nil)
        #expect(ServerMomentum(beta: -0.1, rate: 1) == nil && ServerMomentum(beta: 0, rate: 4.5) == nil)
    }

    @Test func canonicalBytesNameEveryParameterAndTheMask() throws {
        let m = Model(spec: Self.spec, seed: 5)
        #expect(m.canonicalBytes() == Model(spec: Self.spec, seed: 5).canonicalBytes())
        var changed = m
        changed.biases[2][3] = Float(bitPattern: changed.biases[2][3].bitPattern ^ 1)
        #expect(changed.canonicalBytes() != m.canonicalBytes())
        var shifted = m
        shifted.inputStd = 2
        #expect(shifted.canonicalBytes() != m.canonicalBytes())
        // Same widths, other units kept: other bytes.
        let p1 = try m.pruned(to: PruneMask(kept: [[0, 1, 2], [0, 1, 2, 3], Array(0..<12)]))
        let p2 = try m.pruned(to: PruneMask(kept: [[0, 1, 3], [0, 1, 2, 3], Array(0..<12)]))
        #expect(p1.canonicalBytes() != p2.canonicalBytes())
        #expect(m.canonicalBytes().count > 4 * m.cost.params)
    }
}

/// FedAvg read straight from the updates' bytes gives `aggregate(.fedAvg)`'s bytes.
@Suite struct StreamingFedAvgTests {
    @Test func theSameBitsAsTheDecodedAggregate() throws {
        var rng = SeededGenerator(seed: 77, stream: 1)
        for trial in 0..<20 {
            let n = 1 + trial % 5, count = 1 + trial * 37
            var contributions: [ModelContribution] = []
            var encoded: [Aggregation.EncodedUpdate] = []
            for k in 0..<n {
                let values = (0..<count).map { _ in Float(rng.nextGaussian() * [0.001, 0.01, 0.1, 1, 10, 100, 1000][trial % 7]) }
                let key = [UInt8(255 - k), UInt8(trial)]
                let samples = 1 + Int(rng.next() % 5_000)
                contributions.append(ModelContribution(key: key, samples: samples, update: values))
                var bytes = [UInt8](repeating: 0, count: 4 * count)
                bytes.withUnsafeMutableBytes { out in
                    for (i, v) in values.enumerated() {
                        out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                    }
                }
                encoded.append(Aggregation.EncodedUpdate(key: key, samples: samples, bytes: bytes))
                #expect(Aggregation.EncodedUpdate.bytes(of: values) == bytes, "the one encoding of an update")
                #expect(encoded.last!.values(count: count).map(\.bitPattern) == values.map(\.bitPattern))
                #expect(encoded.last!.isFinite(count: count))
            }
            let decoded = try Aggregation.aggregate(contributions, rule: .fedAvg)
            let streamed = try Aggregation.fedAvg(encoded: encoded.shuffled(using: &rng), count: count)
            #expect(decoded.map(\.bitPattern) == streamed.map(\.bitPattern), "trial \(trial)")
        }
        let nan = Aggregation.EncodedUpdate(key: [1], samples: 1, bytes: [0, 0, 0xC0, 0x7F])
        #expect(!nan.isFinite(count: 1))
        #expect(!nan.isFinite(count: 2))
    }
}

/// int8 updates (`UpdateEncoding.int8`): FedAvg read from the quantised bytes gives the bits of
/// `aggregate(.fedAvg)` over the dequantised values; strict usability; the encoder's error
/// feedback and its reset when the model's shape changes.
@Suite struct Int8UpdateEncodingTests {
    @Test func streamedInt8FedAvgHasTheBitsOfTheDequantisedAggregate() throws {
        var rng = SeededGenerator(seed: 91, stream: 2)
        for trial in 0..<16 {
            let sizes = (0..<(1 + trial % 4)).map { t in 1 + (trial * 17 + t * 29) % 97 }
            let n = 1 + trial % 5
            var contributions: [ModelContribution] = []
            var encoded: [Aggregation.EncodedUpdate] = []
            for k in 0..<n {
                let values = sizes.enumerated().flatMap { t, size in
                    (0..<size).map { i in i % 11 == 0 ? 0 : Float(rng.nextGaussian() * [1e-4, 0.1, 10, 1e3][(t + trial) % 4]) }
                }
                let key = [UInt8(200 - k), UInt8(trial)]
                let samples = 1 + Int(rng.next() % 9_000)
                var encoder = UpdateEncoder(.int8)
                let bytes = encoder.encode(values, tensorSizes: sizes)
                #expect(bytes.count == UpdateEncoding.int8.encodedCount(tensorSizes: sizes))
                let update = Aggregation.EncodedUpdate(key: key, samples: samples, bytes: bytes)
                #expect(update.isUsable(.int8, tensorSizes: sizes))
                #expect(!update.isUsable(.f32, tensorSizes: sizes) || bytes.count == 4 * sizes.reduce(0, +))
                let dequantised = try QuantizedUpdate.decode(bytes, tensorSizes: sizes).dequantized()
                #expect(update.values(.int8, tensorSizes: sizes).map(\.bitPattern) == dequantised.map(\.bitPattern))
                contributions.append(ModelContribution(key: key, samples: samples, update: dequantised))
                encoded.append(update)
            }
            let decoded = try Aggregation.aggregate(contributions, rule: .fedAvg)
            let streamed = try Aggregation.fedAvg(encoded: encoded.shuffled(using: &rng), encoding: .int8, tensorSizes: sizes)
            #expect(decoded.map(\.bitPattern) == streamed.map(\.bitPattern), "trial \(trial)")
            // f32 through the same entry point is the f32 streaming FedAvg.
            let f32 = contributions.map {
                Aggregation.EncodedUpdate(key: $0.key, samples: $0.samples, bytes: Aggregation.EncodedUpdate.bytes(of: $0.update))
            }
            #expect(
                try Aggregation.fedAvg(encoded: f32, encoding: .f32, tensorSizes: sizes).map(\.bitPattern)
                    == decoded.map(\.bitPattern))
        }
    }

    @Test func unusableInt8BytesAreLeftOutAndDuplicatesRefused() throws {
        let sizes = [3, 2]
        var encoder = UpdateEncoder(.int8)
        let good = encoder.encode([1, -2, 3, 0.5, 0.25], tensorSizes: sizes)
        #expect(Aggregation.EncodedUpdate(key: [1], samples: 1, bytes: good).isUsable(.int8, tensorSizes: sizes))
        // Wrong length, a −128, a NaN scale, another model's tensors.
        var minus128 = good
        minus128[4] = 0x80
        var nanScale = good
        nanScale[0...3] = [0, 0, 0xC0, 0x7F]
        for bad in [Array(good.dropLast()), good + [0], minus128, nanScale] {
            #expect(!Aggregation.EncodedUpdate(key: [1], samples: 1, bytes: bad).isUsable(.int8, tensorSizes: sizes))
        }
        #expect(!Aggregation.EncodedUpdate(key: [1], samples: 1, bytes: good).isUsable(.int8, tensorSizes: [2, 3]))
        let twice = [1, 1].map { Aggregation.EncodedUpdate(key: [7], samples: $0, bytes: good) }
        #expect(throws: AggregationError.self) { try Aggregation.fedAvg(encoded: twice, encoding: .int8, tensorSizes: sizes) }
        #expect(throws: AggregationError.self) { try Aggregation.fedAvg(encoded: [], encoding: .int8, tensorSizes: sizes) }
    }

    @Test func theEncoderCarriesItsResidualUntilTheShapeChanges() throws {
        var encoder = UpdateEncoder(.int8)
        // 0.3 is far below the tensor's scale (100/127): quantised to 0, carried, then sent.
        let u: [Float] = [100, 0.3, -0.3]
        var sent: [Float] = [0, 0, 0]
        for _ in 0..<10 {
            let d = try QuantizedUpdate.decode(encoder.encode(u, tensorSizes: [3]), tensorSizes: [3]).dequantized()
            for i in 0..<3 { sent[i] += d[i] }
        }
        #expect(encoder.heldValues == 3)
        #expect(abs(sent[1] - 3) <= 100 / 127 / 2 * 1.01 && abs(sent[2] + 3) <= 100 / 127 / 2 * 1.01, "\(sent)")
        // A pruned model: the old residual would not line up, so it is dropped, not added.
        let pruned = try QuantizedUpdate.decode(encoder.encode([0.5, 1], tensorSizes: [2]), tensorSizes: [2]).dequantized()
        #expect(pruned == QuantizedUpdate(quantizing: [0.5, 1], tensorSizes: [2]).dequantized())
        #expect(encoder.heldValues == 2)
        encoder.reset()
        #expect(encoder.heldValues == 0)
        // f32: the bytes of the values, nothing held.
        var plain = UpdateEncoder(.f32)
        #expect(plain.encode(u, tensorSizes: [3]) == Aggregation.EncodedUpdate.bytes(of: u))
        #expect(plain.heldValues == 0)
        #expect(throws: AggregationError.self) { try UpdateEncoding(parsing: "int4") }
        #expect(try UpdateEncoding(parsing: "int8") == .int8)
    }
}
