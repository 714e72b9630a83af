/// A set of labelled images kept as raw bytes (one byte per pixel), converted to floats only a
/// batch at a time, so that Fashion-MNIST's 60,000 training images take 47 MB, not 188 MB.
public struct LabeledImages: Sendable {
    /// Images in the set.
    public let count: Int
    public let height: Int
    public let width: Int
    public let channels: Int
    /// Distinct labels (labels are 0..<classes).
    public let classes: Int
    /// count × height × width × channels bytes, image-major, then row, column, channel (NHWC).
    public let pixels: [UInt8]
    /// count labels, each < classes.
    public let labels: [UInt8]

    public var imageBytes: Int { height * width * channels }

    public init(height: Int, width: Int, channels: Int, classes: Int, pixels: [UInt8], labels: [UInt8]) {
        precondition(
            height > 0 && width > 0 && channels > 0 && classes > 0,
            "image shape \(height)×\(width)×\(channels), \(classes) classes")
        precondition(
            pixels.count == labels.count * height * width * channels,
            "\(pixels.count) pixel bytes for \(labels.count) images of \(height)×\(width)×\(channels)")
        precondition(labels.allSatisfy { Int($0) < classes }, "a label is ≥ \(classes) classes")
        self.count = labels.count
        self.height = height
        self.width = width
        self.channels = channels
        self.classes = classes
        self.pixels = pixels
        self.labels = labels
    }

    /// The images at `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabeledImages {
        let size = imageBytes
        var newPixels = [UInt8]()
        newPixels.reserveCapacity(indices.count * size)
        var newLabels = [UInt8]()
        newLabels.reserveCapacity(indices.count)
        for i in indices {
            precondition(i >= 0 && i < count, "index \(i) outside \(count) images")
            newPixels.append(contentsOf: pixels[i * size..<(i + 1) * size])
            newLabels.append(labels[i])
        }
        return LabeledImages(
            height: height, width: width, channels: channels, classes: classes,
            pixels: newPixels, labels: newLabels)
    }

    /// The first `n` images (or all if fewer).
    public func prefix(_ n: Int) -> LabeledImages { subset(Array(0..<min(n, count))) }

    /// How many images carry each label.
    public var labelCounts: [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for l in labels { counts[Int(l)] += 1 }
        return counts
    }
}

/// A training set and a test set of the same shape.
public struct DataSplit: Sendable {
    public let train: LabeledImages
    public let test: LabeledImages

    public init(train: LabeledImages, test: LabeledImages) {
        precondition(
            train.height == test.height && train.width == test.width && train.channels == test.channels
                && train.classes == test.classes, "train and test shapes differ")
        self.train = train
        self.test = test
    }
}
