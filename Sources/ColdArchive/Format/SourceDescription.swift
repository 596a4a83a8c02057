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

        public init(name: String, origin: String, kind: String) {
            self.name = name
            self.origin = origin
            self.kind = kind
        }

        enum CodingKeys: String, CodingKey {
            case name, origin, kind
            case nameHex = "name_hex"
        }

        // A name that is not valid UTF-8 is given as `name_hex` (FORMAT.md §8).
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let text = try c.decodeIfPresent(String.self, forKey: .name)
            let hex = try c.decodeIfPresent(String.self, forKey: .nameHex)
            guard (text == nil) != (hex == nil) else {
                throw DecodingError.dataCorruptedError(forKey: .name, in: c, debugDescription: "exactly one of name and name_hex")
            }
            if let text {
                name = NameCodec.decode(Array(text.utf8))
            } else {
                guard let bytes = [UInt8](hex: hex!), !bytes.contains(0) else {
                    throw DecodingError.dataCorruptedError(forKey: .nameHex, in: c, debugDescription: "not hex bytes")
                }
                name = NameCodec.decode(bytes)
            }
            origin = try c.decode(String.self, forKey: .origin)
            kind = try c.decode(String.self, forKey: .kind)
            guard ["directory", "file", "import"].contains(kind) else {
                throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown kind")
            }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            if NameCodec.hasEscapes(name) { try c.encode(NameCodec.hex(name), forKey: .nameHex) } else { try c.encode(name, forKey: .name) }
            try c.encode(origin, forKey: .origin)
            try c.encode(kind, forKey: .kind)
        }
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
