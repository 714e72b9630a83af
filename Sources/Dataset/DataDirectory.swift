import MeshBase

/// Finds and loads the four IDX files of an MNIST-family data set (Fashion-MNIST by default).
public enum DataDirectory {
    /// Where Debian's `dataset-fashion-mnist` package puts the files.
    public static let defaultPath = "/usr/share/datasets/fashion-mnist"

    /// The four files of a split, as the data set's authors name them.
    public static let trainImagesName = "train-images-idx3-ubyte"
    public static let trainLabelsName = "train-labels-idx1-ubyte"
    public static let testImagesName = "t10k-images-idx3-ubyte"
    public static let testLabelsName = "t10k-labels-idx1-ubyte"

    /// The paths of the four files found in a directory.
    public struct Files: Sendable, Equatable {
        public let trainImages: String
        public let trainLabels: String
        public let testImages: String
        public let testLabels: String
    }

    /// The names tried for one file, in order: the canonical name, then the
    /// `train-images.idx3-ubyte` spelling (some mirrors use it), each plain before `.gz`
    /// (plain is faster to read when someone has unpacked the files).
    public static func candidates(_ name: String) -> [String] {
        let dotted = name.replacing("-idx", with: ".idx", maxReplacements: 1)
        return [name, name + ".gz", dotted, dotted + ".gz"]
    }

    /// Locates the four files in `directory`.
    public static func locate(_ directory: String) throws(DataDirectoryError) -> Files {
        guard FileBytes.isDirectory(directory) else { throw .directoryMissing(directory: directory) }
        var found = [String]()
        var missing = [String]()
        for name in [trainImagesName, trainLabelsName, testImagesName, testLabelsName] {
            if let path = candidates(name).map({ join(directory, $0) }).first(where: FileBytes.exists) {
                found.append(path)
            } else {
                missing.append(name)
            }
        }
        guard missing.isEmpty else { throw .filesMissing(directory: directory, missing: missing) }
        return Files(trainImages: found[0], trainLabels: found[1], testImages: found[2], testLabels: found[3])
    }

    /// Loads and checks the training and test sets in `directory`.
    ///
    /// Images must be 3-D (count, rows, columns), labels 1-D with the same count, both sets the
    /// same image size, every label below `Limits.dataset_classes_count_max`. The number of
    /// classes is the largest label (over both sets) + 1 and must be at least 2.
    public static func load(_ directory: String = defaultPath) throws(DataDirectoryError) -> DataSplit {
        let files = try locate(directory)
        let train = try loadPair(images: files.trainImages, labels: files.trainLabels)
        let test = try loadPair(images: files.testImages, labels: files.testLabels)
        guard train.images.dimensions[1...] == test.images.dimensions[1...] else {
            throw .imageSizeMismatch(
                train: files.trainImages, trainSize: Array(train.images.dimensions[1...]),
                test: files.testImages, testSize: Array(test.images.dimensions[1...]))
        }
        let classes = max(train.maxLabel, test.maxLabel) + 1
        guard classes >= 2 else { throw .tooFewClasses(classes: classes) }
        func images(_ pair: Pair) -> LabeledImages {
            LabeledImages(
                height: pair.images.dimensions[1], width: pair.images.dimensions[2], channels: 1,
                classes: classes, pixels: pair.images.data, labels: pair.labels.data)
        }
        return DataSplit(train: images(train), test: images(test))
    }

    /// The training set's labels and the class count (as `load` gives them), read from the two
    /// label files alone: 70 KB instead of 55 MB for Fashion-MNIST, for a caller that only
    /// partitions the data. Labels are checked as `load` checks them; the images are not read,
    /// so only `load` finds a mismatch between images and labels.
    public static func loadLabels(_ directory: String = defaultPath) throws(DataDirectoryError) -> (train: [UInt8], classes: Int) {
        let files = try locate(directory)
        let train = try readLabels(files.trainLabels), test = try readLabels(files.testLabels)
        let classes = max(train.maxLabel, test.maxLabel) + 1
        guard classes >= 2 else { throw .tooFewClasses(classes: classes) }
        return (train.labels.data, classes)
    }

    struct Pair {
        var images: IDXFile
        var labels: IDXFile
        var maxLabel: Int
    }

    static func loadPair(images imagesPath: String, labels labelsPath: String) throws(DataDirectoryError) -> Pair {
        let images: IDXFile
        do { images = try IDXFile.read(imagesPath) } catch { throw .idx(error) }
        guard images.dimensions.count == 3 else {
            throw .wrongRank(file: imagesPath, dimensions: images.dimensions, expected: "3 dimensions (count, rows, columns)")
        }
        let labels = try readLabels(labelsPath)
        guard images.dimensions[0] == labels.labels.dimensions[0] else {
            throw .countMismatch(
                images: imagesPath, imageCount: images.dimensions[0],
                labels: labelsPath, labelCount: labels.labels.dimensions[0])
        }
        return Pair(images: images, labels: labels.labels, maxLabel: labels.maxLabel)
    }

    /// A label file: one dimension, every label below `Limits.dataset_classes_count_max`.
    static func readLabels(_ labelsPath: String) throws(DataDirectoryError) -> (labels: IDXFile, maxLabel: Int) {
        let labels: IDXFile
        do { labels = try IDXFile.read(labelsPath) } catch { throw .idx(error) }
        guard labels.dimensions.count == 1 else {
            throw .wrongRank(file: labelsPath, dimensions: labels.dimensions, expected: "1 dimension (count)")
        }
        var maxLabel = 0
        for (i, label) in labels.data.enumerated() {
            guard Int(label) < Limits.dataset_classes_count_max else {
                throw .labelOutOfRange(file: labelsPath, index: i, label: Int(label), max: Limits.dataset_classes_count_max)
            }
            maxLabel = max(maxLabel, Int(label))
        }
        return (labels, maxLabel)
    }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
