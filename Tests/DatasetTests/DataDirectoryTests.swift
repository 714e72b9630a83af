import Foundation
import Gzip
import MeshBase
import Testing

@testable import Dataset

/// Whether Debian's Fashion-MNIST package is installed (the real-data tests need it).
let fashionMNISTInstalled = FileManager.default.fileExists(
    atPath: DataDirectory.defaultPath + "/train-images-idx3-ubyte.gz")

@Suite struct DataDirectoryTests {
    /// Writes a small, valid data set: `train` and `test` images of 3×2 pixels whose labels
    /// cycle through `classes` values.
    static func writeDataSet(
        _ dir: TemporaryDirectory, train: Int = 12, test: Int = 5, classes: Int = 3,
        names: [String]? = nil, gzip: Bool = false
    ) throws {
        let names =
            names ?? [
                DataDirectory.trainImagesName, DataDirectory.trainLabelsName,
                DataDirectory.testImagesName, DataDirectory.testLabelsName,
            ]
        func put(_ name: String, _ bytes: [UInt8]) throws {
            try dir.write(name + (gzip ? ".gz" : ""), gzip ? try Gzip.compress(bytes) : bytes)
        }
        for (i, count) in [train, test].enumerated() {
            let pixels = (0..<count * 6).map { UInt8(truncatingIfNeeded: $0 * 7) }
            let labels = (0..<count).map { UInt8($0 % classes) }
            try put(names[2 * i], IDXFile.encode(dimensions: [count, 3, 2], data: pixels))
            try put(names[2 * i + 1], IDXFile.encode(dimensions: [count], data: labels))
        }
    }

    static func loadError(_ dir: TemporaryDirectory) -> DataDirectoryError? {
        do {
            _ = try DataDirectory.load(dir.path)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [false, true])
    func loadsASmallDataSet(gzip: Bool) throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(dir, gzip: gzip)
        let split = try DataDirectory.load(dir.path)
        #expect(split.train.count == 12 && split.test.count == 5)
        #expect(split.train.height == 3 && split.train.width == 2 && split.train.channels == 1)
        #expect(split.train.classes == 3)
        #expect(split.train.labels == (0..<12).map { UInt8($0 % 3) })
        #expect(split.train.pixels == (0..<72).map { UInt8(truncatingIfNeeded: $0 * 7) })
    }

    /// The label files alone give what `load` gives of them (classes over both sets), and fail
    /// as `load` fails on them.
    @Test(arguments: [false, true])
    func labelsAloneAreLoadsLabels(gzip: Bool) throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(dir, gzip: gzip)
        let split = try DataDirectory.load(dir.path)
        let (labels, classes) = try DataDirectory.loadLabels(dir.path)
        #expect(labels == split.train.labels && classes == split.train.classes)
        let single = try TemporaryDirectory()
        try Self.writeDataSet(single, classes: 1)
        #expect(throws: DataDirectoryError.tooFewClasses(classes: 1)) { try DataDirectory.loadLabels(single.path) }
        #expect(throws: DataDirectoryError.self) { try DataDirectory.loadLabels(dir.path + "/absent") }
    }

    @Test func acceptsTheDottedSpelling() throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(
            dir,
            names: [
                "train-images.idx3-ubyte", "train-labels.idx1-ubyte",
                "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte",
            ], gzip: true)
        #expect(try DataDirectory.load(dir.path).train.count == 12)
        #expect(
            DataDirectory.candidates("train-images-idx3-ubyte")
                == [
                    "train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                    "train-images.idx3-ubyte", "train-images.idx3-ubyte.gz",
                ])
    }

    @Test func plainIsPreferredOverGzip() throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(dir, gzip: true)
        try Self.writeDataSet(dir, train: 6, test: 3)
        #expect(try DataDirectory.load(dir.path).train.count == 6)
        #expect(try DataDirectory.locate(dir.path).trainImages == dir.path + "/train-images-idx3-ubyte")
    }

    @Test func missingDataSaysHowToInstallIt() throws {
        let dir = try TemporaryDirectory()
        let absent = dir.path + "/nothing-here"
        let error = #expect(throws: DataDirectoryError.directoryMissing(directory: absent)) {
            try DataDirectory.load(absent)
        }
        #expect(error?.description.contains("apt-get install dataset-fashion-mnist") == true)
        #expect(error?.description.contains("--data DIR") == true)

        try dir.write(DataDirectory.trainImagesName, IDXFile.encode(dimensions: [1, 1, 1], data: [0]))
        let partial = Self.loadError(dir)
        #expect(
            partial
                == .filesMissing(
                    directory: dir.path,
                    missing: [
                        DataDirectory.trainLabelsName, DataDirectory.testImagesName,
                        DataDirectory.testLabelsName,
                    ]))
        #expect(partial?.description.contains("apt-get install dataset-fashion-mnist") == true)
    }

    @Test func malformedFileIsNamed() throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(dir)
        let path = try dir.write(DataDirectory.testLabelsName, [0, 0, 8, 1, 0, 0, 0, 5, 1, 2])
        let error = Self.loadError(dir)
        #expect(error == .idx(IDXError(file: path, problem: .truncatedData(expected: 5, actual: 2))))
        #expect(error?.description.hasPrefix(path + ": ") == true)
    }

    @Test func imagesMustBe3DAndLabels1D() throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(dir)
        let images = try dir.write(
            DataDirectory.trainImagesName, IDXFile.encode(dimensions: [12, 6], data: [UInt8](repeating: 0, count: 72)))
        #expect(Self.loadError(dir) == .wrongRank(file: images, dimensions: [12, 6], expected: "3 dimensions (count, rows, columns)"))

        try Self.writeDataSet(dir)
        let labels = try dir.write(
            DataDirectory.trainLabelsName, IDXFile.encode(dimensions: [12, 1], data: [UInt8](repeating: 0, count: 12)))
        #expect(Self.loadError(dir) == .wrongRank(file: labels, dimensions: [12, 1], expected: "1 dimension (count)"))
    }

    @Test func countsMustMatch() throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(dir)
        let labels = try dir.write(DataDirectory.testLabelsName, IDXFile.encode(dimensions: [4], data: [0, 1, 2, 0]))
        #expect(
            Self.loadError(dir)
                == .countMismatch(
                    images: dir.path + "/" + DataDirectory.testImagesName, imageCount: 5,
                    labels: labels, labelCount: 4))
    }

    @Test func trainAndTestImagesMustBeTheSameSize() throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(dir)
        let test = try dir.write(
            DataDirectory.testImagesName, IDXFile.encode(dimensions: [5, 2, 3], data: [UInt8](repeating: 0, count: 30)))
        #expect(
            Self.loadError(dir)
                == .imageSizeMismatch(
                    train: dir.path + "/" + DataDirectory.trainImagesName,
                    trainSize: [3, 2], test: test, testSize: [2, 3]))
    }

    @Test func labelsMustBeBelowTheClassLimit() throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(dir)
        let max = Limits.dataset_classes_count_max
        let labels = try dir.write(
            DataDirectory.trainLabelsName,
            IDXFile.encode(dimensions: [12], data: [0, 1, 2, 3, 4, 5, 6, 7, 8, UInt8(max - 1), UInt8(max), 0]))
        let error = Self.loadError(dir)
        #expect(error == .labelOutOfRange(file: labels, index: 10, label: max, max: max))
        #expect(error?.description.contains("label \(max) at index 10") == true)
        // max − 1 alone is fine and sets the class count.
        try dir.write(
            DataDirectory.trainLabelsName,
            IDXFile.encode(dimensions: [12], data: [0, 1, 2, 3, 4, 5, 6, 7, 8, UInt8(max - 1), 0, 0]))
        #expect(try DataDirectory.load(dir.path).train.classes == max)
    }

    @Test func oneClassIsNotEnough() throws {
        let dir = try TemporaryDirectory()
        try Self.writeDataSet(dir, classes: 1)
        #expect(Self.loadError(dir) == .tooFewClasses(classes: 1))
    }

    @Test(.enabled(if: fashionMNISTInstalled, "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"))
    func loadsFashionMNIST() throws {
        let split = try DataDirectory.load()
        #expect(split.train.count == 60_000)
        #expect(split.test.count == 10_000)
        #expect(split.train.height == 28 && split.train.width == 28 && split.train.channels == 1)
        #expect(split.train.classes == 10)
        #expect(split.train.labelCounts == [Int](repeating: 6000, count: 10))
        #expect(split.test.labelCounts == [Int](repeating: 1000, count: 10))
        #expect(split.train.pixels.count == 60_000 * 784)
        // The same statistics numpy computes in float64 over train/255 (see the PyTorch benchmark).
        let (mean, std) = split.train.pixelMeanStd()
        #expect(abs(mean - 0.286_040_6) < 1e-6)
        #expect(abs(std - 0.353_024_2) < 1e-6)
    }

    @Test(.enabled(if: fashionMNISTInstalled, "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"))
    func readsTheRealIDXHeaders() throws {
        let files = try DataDirectory.locate(DataDirectory.defaultPath)
        #expect(try IDXFile.read(files.testImages).dimensions == [10_000, 28, 28])
        #expect(try IDXFile.read(files.testLabels).dimensions == [10_000])
        #expect(try IDXFile.read(files.trainLabels).dimensions == [60_000])
    }
}
