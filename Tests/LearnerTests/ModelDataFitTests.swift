import Dataset
import MeshBase
import Testing

@testable import Learner

/// A model meets data only after `checkFits`: another input shape, or a classifier narrower than
/// the labels' classes, is an error naming both sides (it trapped in `Network.load`, or read past
/// the logits and reported garbage).
@Suite struct ModelDataFitTests {
    static func images(side: Int, channels: Int = 1, classes: Int) -> LabeledImages {
        let count = 2 * classes
        return LabeledImages(
            height: side, width: side, channels: channels, classes: classes,
            pixels: [UInt8](repeating: 7, count: count * side * side * channels),
            labels: (0..<count).map { UInt8($0 % classes) })
    }

    @Test func aModelOfTheDataShapeAndClassesFits() throws {
        let spec = try ModelSpec(parsing: "28x28x1:conv3x4,relu,pool2,dense10")
        try spec.checkFits(Self.images(side: 28, classes: 10))
        // A wider classifier than the data's classes runs (some outputs are never the target).
        try spec.checkFits(Self.images(side: 28, classes: 3))
    }

    @Test func anotherInputShapeNamesBothShapes() throws {
        let spec = try ModelSpec(parsing: "28x28x1:conv3x4,relu,pool2,dense10")
        let error = #expect(throws: ModelDataMismatch.self) { try spec.checkFits(Self.images(side: 32, classes: 10)) }
        #expect(error?.description.contains("28x28x1") == true && error?.description.contains("32x32x1") == true)
        let threeChannels = try ModelSpec(parsing: "28x28x3:conv3x4,relu,pool2,dense10")
        let e3 = #expect(throws: ModelDataMismatch.self) { try threeChannels.checkFits(Self.images(side: 28, classes: 10)) }
        #expect(e3?.description.contains("28x28x3") == true && e3?.description.contains("28x28x1") == true)
        // Same pixel count, other shape (14×56 vs 28×28): still refused.
        #expect(throws: ModelDataMismatch.self) {
            try spec.checkFits(imageHeight: 14, imageWidth: 56, imageChannels: 1, classes: 10)
        }
    }

    @Test func aClassifierNarrowerThanTheClassesIsRefused() throws {
        let spec = try ModelSpec(parsing: "28x28x1:conv3x4,relu,pool2,dense5")
        let error = #expect(throws: ModelDataMismatch.self) { try spec.checkFits(Self.images(side: 28, classes: 10)) }
        #expect(error?.description.contains("dense5") == true && error?.description.contains("10 classes") == true)
    }
}

/// A model is sized against the limits before anything is allocated for it.
@Suite struct ModelSizeTests {
    @Test func theDefaultModelFitsAtTheLargestBatch() throws {
        try ModelSpec.leafFashion.checkSize(batch: Limits.training_batch_size_max)
        #expect(ModelSpec.leafFashion.parameterCount == 6_497_162)
    }

    @Test func modelsTooLargeToAllocateAreRefused() throws {
        let wide = try ModelSpec(parsing: "28x28x1:conv15x8192,relu,conv15x8192,relu,dense8192,dense10")
        let e = #expect(throws: ModelTooLarge.self) { try wide.checkSize(batch: 1) }
        #expect(e?.problem.contains("parameters") == true)
        let tall = try ModelSpec(parsing: "1024x1024x1:conv1x64,relu,pool1024,dense10")
        try tall.checkSize(batch: 1)
        let a = #expect(throws: ModelTooLarge.self) { try tall.checkSize(batch: 16) }
        #expect(a?.problem.contains("activations") == true)
    }
}
