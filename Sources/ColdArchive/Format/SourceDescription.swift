import Foundation

/// What was archived and how (FORMAT.md §8, v2): the JSON object at the start of the encrypted
/// manifest. It names hosts and paths, so it never goes into the plaintext header.
public struct SourceDescription: Sendable, Equatable, Codable {
    public struct Source: Sendable, Equatable, Codable {
        /// The top-level entry's name.
        public var name: String
        /// Where it came from on the archiving host: a path, or a vendor export's file name.
        public var origin: String
        /// "directory", "file" or "import".
        public var kind: String
    }

    public var sources: [Source]
    /// The exclude patterns in force, in the order given.
    public var exclude: [String] = []
    public var oneFileSystem: Bool = false
    public var host: String?

    enum CodingKeys: String, CodingKey {
        case sources, exclude, host
        case oneFileSystem = "one_file_system"
    }

    public init(sources: [Source], exclude: [String] = [], oneFileSystem: Bool = false, host: String?) {
        self.sources = sources
        self.exclude = exclude
        self.oneFileSystem = oneFileSystem
        self.host = host
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data("{\"sources\":[]}".utf8))
    }

    /// Parses the description and checks it names exactly `topLevel`, in order.
    static func decode(_ bytes: [UInt8], topLevel: [String]) throws -> SourceDescription {
        guard let description = try? JSONDecoder().decode(SourceDescription.self, from: Data(bytes)) else {
            throw IntegrityError.malformed(what: "manifest source description (not the JSON object FORMAT.md §8 describes)")
        }
        guard description.sources.count == topLevel.count,
              zip(description.sources, topLevel).allSatisfy({ PathRules.same($0.name, $1) }) else {
            throw IntegrityError.inconsistent(what: "the source description names \(description.sources.map { "'\(DisplayName.escaped($0.name))'" }.joined(separator: ", ")), the archive's top-level entries are \(topLevel.map { "'\(DisplayName.escaped($0))'" }.joined(separator: ", "))")
        }
        return description
    }
}
