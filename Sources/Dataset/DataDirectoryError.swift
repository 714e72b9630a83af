/// Why a data set directory could not be loaded. Each description names the file and the problem,
/// and a missing data set says how to install it.
public enum DataDirectoryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The directory does not exist (or is not a directory).
    case directoryMissing(directory: String)
    /// Some of the four IDX files are absent; carries the names looked for.
    case filesMissing(directory: String, missing: [String])
    /// An IDX file is malformed.
    case idx(IDXError)
    /// An images file is not 3-D (count, rows, columns) or a labels file not 1-D.
    case wrongRank(file: String, dimensions: [Int], expected: String)
    /// An images file and its labels file disagree on the number of samples.
    case countMismatch(images: String, imageCount: Int, labels: String, labelCount: Int)
    /// The training and test images differ in size.
    case imageSizeMismatch(train: String, trainSize: [Int], test: String, testSize: [Int])
    /// A label is not below `Limits.dataset_classes_count_max`.
    case labelOutOfRange(file: String, index: Int, label: Int, max: Int)
    /// All labels are the same: nothing to classify.
    case tooFewClasses(classes: Int)

    /// What to do when the data set is absent.
    public static let installHint =
        "install it with `apt-get install dataset-fashion-mnist`, or pass `--data DIR` with the four IDX files "
        + "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each plain or .gz)"

    public var description: String {
        switch self {
        case let .directoryMissing(directory):
            return "data directory \(directory) does not exist; \(Self.installHint)"
        case let .filesMissing(directory, missing):
            return "data directory \(directory) lacks \(missing.joined(separator: ", ")) (plain or .gz); \(Self.installHint)"
        case let .idx(error):
            return error.description
        case let .wrongRank(file, dimensions, expected):
            return "\(file): dimensions \(dimensions.map(String.init).joined(separator: "×")), expected \(expected)"
        case let .countMismatch(images, imageCount, labels, labelCount):
            return "\(images) holds \(imageCount) images but \(labels) holds \(labelCount) labels"
        case let .imageSizeMismatch(train, trainSize, test, testSize):
            return "\(train) has \(trainSize.map(String.init).joined(separator: "×")) images but \(test) has "
                + "\(testSize.map(String.init).joined(separator: "×"))"
        case let .labelOutOfRange(file, index, label, max):
            return "\(file): label \(label) at index \(index); labels must be below \(max)"
        case let .tooFewClasses(classes):
            return "the labels name \(classes) class; a classifier needs at least 2"
        }
    }
}
