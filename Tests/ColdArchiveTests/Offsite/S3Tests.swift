import Foundation
import Testing
@testable import ColdArchive
@testable import ColdArchiveS3

/// The S3 store of the tests: SeaweedFS on loopback, started by `make test` (Tests/Support/with-seaweedfs),
/// which passes its endpoint and key in the environment.
struct S3Store {
    let endpoint: String
    let credentials: S3Credentials

    init() throws {
        let env = ProcessInfo.processInfo.environment
        guard let endpoint = env["COLDARCHIVE_TEST_S3_ENDPOINT"], let key = env["COLDARCHIVE_TEST_S3_KEY"], let secret = env["COLDARCHIVE_TEST_S3_SECRET"] else {
            throw OperationError("no S3 store for the tests: run them through 'make test', which starts SeaweedFS (Tests/Support/with-seaweedfs)")
        }
        self.endpoint = endpoint
        credentials = S3Credentials(accessKeyID: key, secretAccessKey: secret)
    }

    func client(endpoint: String? = nil) throws -> S3Client {
        try S3Client(endpoint: endpoint ?? self.endpoint, region: "us-east-1", credentials: credentials)
    }

    /// A new bucket of its own for a test, with Object Lock (and so versioning) or without.
    func bucket(locked: Bool) async throws -> String {
        let name = "t-\(UUID().uuidString.prefix(12).lowercased())"
        try await client().createBucket(name, objectLock: locked)
        return name
    }

    /// The environment for the binary and for awscli.
    var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": credentials.secretAccessKey, "AWS_DEFAULT_REGION": "us-east-1",
         "AWS_ENDPOINT_URL": endpoint]
    }
}

/// A fault-injecting proxy between the tool and the store (Tests/Support/faultproxy.py).
final class FaultProxy {
    let process = Process()
    let input = Pipe()
    let endpoint: String
    let stats: String

    init(upstream: String, faults: String, stall: Double = 5) throws {
        let support = FidelityTests.support
        stats = FileManager.default.temporaryDirectory.appendingPathComponent("faultproxy-\(UUID().uuidString).json").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["\(support)/faultproxy.py", "--upstream", String(upstream.dropFirst("http://".count)), "--faults", faults,
                             "--stall", "\(stall)", "--stats", stats]
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        var line = [UInt8]()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard let b = byte.first, b != UInt8(ascii: "\n") else { break }
            line.append(b)
        }
        endpoint = "http://127.0.0.1:\(String(decoding: line, as: UTF8.self))"
    }

    /// Stops the proxy; returns how many faults of each rule it injected.
    func stop() throws -> [String: Int] {
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(atPath: stats) }
        return try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: URL(fileURLWithPath: stats)))
    }
}

@Suite(.serialized) struct S3Tests {
    /// An archive of incompressible data, `bytes` long or so, and its keys.
    func archive(_ scratch: Scratch, keys: TestKeys, bytes: Int, name: String = "a.car") throws -> String {
        let source = scratch.sub("src-\(name)")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try TreeBuilder.write("\(source)/attachments.bin", bytes: TreeBuilder.noise(bytes, seed: UInt64(bytes)))
        let path = scratch.sub(name)
        _ = try ArchiveCreator.create(CreateOptions(sources: [source], output: path, label: "s3 test"), signer: keys.signer, recipients: keys.recipients)
        return path
    }

    /// The store, a scratch directory, a keyring and an archive of about `bytes` bytes in it.
    func setUp(bytes: Int) throws -> (S3Store, Scratch, TestKeys, String) {
        let store = try S3Store()
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        return (store, scratch, keys, try archive(scratch, keys: keys, bytes: bytes))
    }

    /// The store, a scratch directory, a keyring made by the binary, a CRM tree and a vault with a series.
    func setUpVault() throws -> (S3Store, Scratch, String, String, String) {
        let store = try S3Store()
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"))
        let vault = scratch.sub("vault")
        #expect(try CLI.run(["vault", "init", vault, "--series", "crm", "--keyring", keyring]).status == 0)
        return (store, scratch, keyring, source, vault)
    }

    @Test func signatureVersion4MatchesAWSsOwnExample() {
        // "Example: GET Object" of the AWS S3 API Reference, sig-v4-header-based-auth.
        let signer = SigV4(credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                           region: "us-east-1")
        let headers = signer.sign(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", query: [],
                                  headers: [("Range", "bytes=0-9")],
                                  payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                  date: Date(timeIntervalSince1970: 1_369_353_600))
        let authorization = headers.first { $0.0 == "authorization" }?.1
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func aLockedCopyIsReadBackAndItsVersionCannotBeDeleted() async throws {
        let (store, scratch, keys, path) = try setUp(bytes: 20_000_000)
        let bucket = try await store.bucket(locked: true)
        let client = try store.client()
        var options = S3Push.Options()
        options.lockMode = "COMPLIANCE"
        options.retainUntil = Date().addingTimeInterval(3 * 86_400)
        options.storageClass = "GLACIER"
        let report = try await S3Push.push(path, to: S3Location(bucket: bucket, prefix: "vault"), client: client, options: options,
                                           trusting: [keys.signer.publicKey])
        #expect(report.parts == 3 && report.resumedParts == 0)
        #expect(report.lockMode == "COMPLIANCE")
        #expect(abs(report.retainUntil!.timeIntervalSince(options.retainUntil!)) < 2)
        let version = try #require(report.versionID)
        #expect(try await client.headObject(bucket: bucket, key: "vault/a.car", versionID: version)?.storageClass == "GLACIER")
        // awscli fetches what push wrote, bit-identical. (As root, where make deps installed it: the
        // unprivileged rerun of the suite cannot reach root's Python.)
        if let aws = awsCLI() {
            let fetched = scratch.sub("fetched.car")
            let got = try CLI.run(["s3api", "get-object", "--bucket", bucket, "--key", "vault/a.car", fetched], environment: store.environment,
                                  executable: aws)
            #expect(got.status == 0, "\(got.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: fetched)) == Data(contentsOf: URL(fileURLWithPath: path)))
        } else {
            #expect(getuid() != 0, "awscli is missing: pip install awscli")
        }
        // A second push finds the same bytes there, reads them back, and writes nothing.
        let again = try await S3Push.push(path, to: S3Location(bucket: bucket, prefix: "vault"), client: client, options: S3Push.Options(),
                                          trusting: [keys.signer.publicKey])
        #expect(again.alreadyThere && again.versionID == version && again.lockMode == "COMPLIANCE")
        // The locked version cannot be deleted; a plain delete only adds a marker, the version stays.
        let refused = try await client.deleteObject(bucket: bucket, key: "vault/a.car", versionID: version)
        #expect(refused.status == 403, "\(refused)")
        _ = try await client.deleteObject(bucket: bucket, key: "vault/a.car", versionID: nil)
        #expect(try await client.headObject(bucket: bucket, key: "vault/a.car", versionID: version) != nil)
    }

    @Test func offsiteCheckPassesWhereTheLockHoldsAndFailsWhereThereIsNone() async throws {
        let store = try S3Store()
        let client = try store.client()
        let locked = try await OffsiteCheck.check(S3Location(bucket: try await store.bucket(locked: true), prefix: "x"), client: client, lockFor: 3600)
        #expect(locked.enforced && locked.deleteRefused && locked.versionStillThere, "\(locked)")
        #expect(locked.retention?.hasPrefix("COMPLIANCE until") == true)
        let plain = try await OffsiteCheck.check(S3Location(bucket: try await store.bucket(locked: false), prefix: "x"), client: client, lockFor: 3600)
        #expect(!plain.enforced)
        #expect(plain.problem?.contains("the bucket has no Object Lock configuration") == true, "\(plain)")
        // Through the binary: exit 1 and the reason.
        let bucket = try await store.bucket(locked: false)
        let result = try CLI.run(["offsite", "check", "s3://\(bucket)/p", "--endpoint", store.endpoint, "--lock-for", "60"], environment: store.environment)
        #expect(result.status == 1 && result.stdout.contains("NOT ENFORCED"), "\(result.stdout)\(result.stderr)")
    }

    @Test func aVaultArchiveInABucketIsJournaledAndRestoresFromTheBucketAlone() async throws {
        let (store, scratch, keyring, source, vault) = try setUpVault()
        let made = try CLI.run(["create", "--vault", vault, "--series", "crm", "--keyring", keyring, "--retain", "1y", source])
        #expect(made.status == 0, "\(made.stderr)")
        let archive = try #require(try FileManager.default.subpathsOfDirectory(atPath: vault).first { $0.hasSuffix(".car") })
        let bucket = try await store.bucket(locked: true)
        let push = try CLI.run(["push", "\(vault)/\(archive)", "--to", "s3://\(bucket)/vault", "--endpoint", store.endpoint, "--lock-mode", "compliance",
                                "--keyring", keyring], environment: store.environment)
        #expect(push.status == 0, "\(push.stderr)")
        #expect(push.stdout.contains("COPIED") && push.stdout.contains("locked COMPLIANCE until"), "\(push.stdout)")
        // The lock lasts as long as the archive's own signed retain-until (a year from now).
        let info = try #require(try await store.client().headObject(bucket: bucket, key: "vault/\(archive)"))
        #expect(info.retainUntil.map { $0.timeIntervalSinceNow > 360 * 86_400 } == true, "\(info)")
        // The copy is in the vault's journal, by URL and version, and the vault's metadata is in the bucket.
        let copies = try Vault.open(vault).recordedCopies(trusting: [try SigningPublicKey(contentsOf: "\(keyring)/signing.pub")])
        #expect(copies.count == 1 && copies[0].target?.hasPrefix("s3://\(bucket)/vault/\(archive)?versionId=") == true, "\(copies)")
        #expect(try await store.client().headObject(bucket: bucket, key: "vault/journal.log") != nil)
        // Restore from the bucket alone.
        let out = scratch.sub("restored")
        let restore = try CLI.run(["restore", "s3://\(bucket)/vault/\(archive)", "--endpoint", store.endpoint, "--keyring", keyring, "--to", out],
                                  environment: store.environment)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try TreeSnapshot(source) == TreeSnapshot("\(out)/crm"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.contains("spool") }.isEmpty)
        // This month's archive (the first was last month's, the default) goes to the bucket as it is made
        // (create --copies), locked, journaled.
        let utc = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
        let thisMonth = String(format: "%04d-%02d", utc.year!, utc.month!)
        let next = try CLI.run(["create", "--vault", vault, "--series", "crm", "--keyring", keyring, "--retain", "1y", "--period", thisMonth,
                                "--copies", "s3://\(bucket)/vault", "--endpoint", store.endpoint, "--lock-mode", "compliance", source],
                               environment: store.environment)
        #expect(next.status == 0, "\(next.stderr)")
        #expect(next.stdout.contains("copied to s3://\(bucket)/vault/") && next.stdout.contains("locked COMPLIANCE"), "\(next.stdout)")
        #expect(try Vault.open(vault).recordedCopies(trusting: [try SigningPublicKey(contentsOf: "\(keyring)/signing.pub")]).count == 2)
    }

    @Test func aBaseStaysLockedAsLongAsTheIncrementalThatRestsOnIt() async throws {
        let (store, scratch, keyring, source, vault) = try setUpVault()
        let state = ["--state", scratch.sub("state")]
        #expect(try CLI.run(["create", "--vault", vault, "--series", "crm", "--keyring", keyring, "--retain", "1y", "--period", "2026-10"] + state + [source]).status == 0)
        try TreeBuilder.write("\(source)/late.csv", "late order\n")
        let incremental = try CLI.run(["create", "--vault", vault, "--series", "crm", "--keyring", keyring, "--retain", "2y", "--period", "2026-11",
                                       "--mode", "incremental"] + state + [source])
        #expect(incremental.status == 0, "\(incremental.stderr)")
        let archives = try FileManager.default.subpathsOfDirectory(atPath: vault).filter { $0.hasSuffix(".car") }.sorted()
        #expect(archives.count == 2)
        let bucket = try await store.bucket(locked: true)
        let push = try CLI.run(["push"] + archives.map { "\(vault)/\($0)" } + ["--to", "s3://\(bucket)/v", "--endpoint", store.endpoint,
                                "--lock-mode", "compliance", "--keyring", keyring], environment: store.environment)
        #expect(push.status == 0, "\(push.stderr)")
        #expect(push.stdout.contains("the base s3://\(bucket)/v/\(archives[0]) is now locked until"), "\(push.stdout)")
        let client = try store.client()
        let full = try #require(try await client.headObject(bucket: bucket, key: "v/\(archives[0])"))
        let last = try #require(try await client.headObject(bucket: bucket, key: "v/\(archives[1])"))
        #expect(full.retainUntil == last.retainUntil && (full.retainUntil?.timeIntervalSinceNow ?? 0) > 700 * 86_400, "\(full) \(last)")
    }

    @Test func aPushKilledHalfwayResumesWithoutSendingItsFinishedPartsAgain() async throws {
        let (store, scratch, keys, path) = try setUp(bytes: 60_000_000)
        defer { withExtendedLifetime(scratch) {} }   // the scratch directory holds the archive
        let bucket = try await store.bucket(locked: false)
        // Two parts in flight: when the third is done, at most four were ever started.
        let killed = try CLI.run(["push", path, "--to", "s3://\(bucket)/v", "--endpoint", store.endpoint, "--keyring", keys.directory,
                                  "--parts-in-flight", "2"],
                                 environment: store.environment.merging(["COLDARCHIVE_TEST_KILL_AFTER_PARTS": "3"]) { $1 })
        #expect(killed.status == SIGKILL, "\(killed.status) \(killed.stderr)")
        let client = try store.client()
        // Nothing that counts as a copy: no object, an unfinished upload with the parts sent.
        #expect(try await client.headObject(bucket: bucket, key: "v/a.car") == nil)
        let uploads = try await client.listMultipartUploads(bucket: bucket, key: "v/a.car")
        #expect(uploads.count == 1)
        let sent = try await client.listParts(bucket: bucket, key: "v/a.car", uploadID: uploads[0].id).count
        #expect(sent >= 3)
        let report = try await S3Push.push(path, to: S3Location(bucket: bucket, prefix: "v"), client: client, options: S3Push.Options(),
                                           trusting: [keys.signer.publicKey])
        // Parts in flight when it was killed may still have landed after the listing: at least those listed.
        #expect(report.parts == 8 && report.resumedParts >= max(3, sent) && report.resumedParts <= 4, "\(report)")
        #expect(try await client.listMultipartUploads(bucket: bucket, key: "v/a.car").isEmpty)
    }

    @Test func resetsErrorsAndStallsAreRetriedAndTheCopyIsBitIdentical() async throws {
        let (store, scratch, keys, path) = try setUp(bytes: 30_000_000)
        defer { withExtendedLifetime(scratch) {} }   // the scratch directory holds the archive
        let bucket = try await store.bucket(locked: false)
        let proxy = try FaultProxy(upstream: store.endpoint, faults: "reset-part=1,500-part=1,503=2,stall-get=1,reset-get=1", stall: 8)
        let client = try store.client(endpoint: proxy.endpoint)
        client.requestTimeout = .seconds(4)
        client.backoff = .milliseconds(50)
        let report = try await S3Push.push(path, to: S3Location(bucket: bucket, prefix: ""), client: client, options: S3Push.Options(),
                                           trusting: [keys.signer.publicKey])
        let injected = try proxy.stop()
        #expect(injected == ["reset-part": 1, "500-part": 1, "503": 2, "stall-get": 1, "reset-get": 1], "\(injected)")
        #expect(report.parts == 4)
        let direct = try store.client()
        var fetched = [UInt8]()
        for start in stride(from: UInt64(0), to: report.bytes, by: 8 << 20) {
            fetched += try await direct.getObject(bucket: bucket, key: "a.car", versionID: nil, range: start..<min(start + (8 << 20), report.bytes))
        }
        #expect(fetched == Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    @Test func aPushThatCannotFinishSaysSoAndLeavesNoCopy() async throws {
        let (store, scratch, keys, path) = try setUp(bytes: 20_000_000)
        defer { withExtendedLifetime(scratch) {} }   // the scratch directory holds the archive
        let bucket = try await store.bucket(locked: false)
        let proxy = try FaultProxy(upstream: store.endpoint, faults: "always-503-part=1")
        let client = try store.client(endpoint: proxy.endpoint)
        client.backoff = .milliseconds(20)
        do {
            _ = try await S3Push.push(path, to: S3Location(bucket: bucket, prefix: ""), client: client, options: S3Push.Options(),
                                      trusting: [keys.signer.publicKey])
            Issue.record("a push through a store that always answers SlowDown succeeded")
        } catch let error as S3Error {
            guard case .unavailable(let operation, let attempts, let last) = error else { Issue.record("unexpected: \(error)"); return }
            #expect(operation == "UploadPart" && attempts == client.attempts && last.contains("503 SlowDown"), "\(error)")
            #expect(error.description.contains("nothing that counts as a copy"))
        }
        _ = try proxy.stop()
        #expect(try await store.client().headObject(bucket: bucket, key: "a.car") == nil)
    }

    @Test func aStoreThatReturnsOtherBytesOrDropsTheLockGivesNoCopy() async throws {
        let (store, scratch, keys, path) = try setUp(bytes: 3_000_000)
        defer { withExtendedLifetime(scratch) {} }   // the scratch directory holds the archive
        let trusted = [keys.signer.publicKey]
        // One byte different in what the store gives back: not a copy.
        var proxy = try FaultProxy(upstream: store.endpoint, faults: "flip-get=1")
        do {
            _ = try await S3Push.push(path, to: S3Location(bucket: try await store.bucket(locked: false), prefix: ""),
                                      client: try store.client(endpoint: proxy.endpoint), options: S3Push.Options(), trusting: trusted)
            Issue.record("an object that read back different counted as a copy")
        } catch let error as S3Error {
            guard case .notACopy(let why) = error else { Issue.record("unexpected: \(error)"); return }
            #expect(why.contains("read back differ from the archive"))
        }
        _ = try proxy.stop()
        // A store that accepts the lock and then does not report it: the push fails.
        proxy = try FaultProxy(upstream: store.endpoint, faults: "no-retention=1")
        var options = S3Push.Options()
        options.lockMode = "COMPLIANCE"
        options.retainUntil = Date().addingTimeInterval(86_400)
        do {
            _ = try await S3Push.push(path, to: S3Location(bucket: try await store.bucket(locked: true), prefix: ""),
                                      client: try store.client(endpoint: proxy.endpoint), options: options, trusting: trusted)
            Issue.record("a lock the store does not report was taken as enforced")
        } catch let error as S3Error {
            guard case .lockNotEnforced(let why) = error else { Issue.record("unexpected: \(error)"); return }
            #expect(why.contains("but the store reports no lock"))
        }
        _ = try proxy.stop()
        // A store that accepts the delete of a locked version: offsite check says it is not enforced.
        proxy = try FaultProxy(upstream: store.endpoint, faults: "accept-delete=1")
        let check = try await OffsiteCheck.check(S3Location(bucket: try await store.bucket(locked: true), prefix: ""),
                                                 client: try store.client(endpoint: proxy.endpoint), lockFor: 600)
        _ = try proxy.stop()
        #expect(!check.enforced && check.problem?.contains("was accepted (HTTP 204)") == true, "\(check)")
        // A store that takes the lock settings and reports no retention: not enforced either.
        proxy = try FaultProxy(upstream: store.endpoint, faults: "no-retention=1")
        let silent = try await OffsiteCheck.check(S3Location(bucket: try await store.bucket(locked: true), prefix: ""),
                                                  client: try store.client(endpoint: proxy.endpoint), lockFor: 600)
        _ = try proxy.stop()
        #expect(!silent.enforced && silent.problem?.contains("reports no retention") == true, "\(silent)")
    }

    @Test func anArchivedObjectIsNamedWithHowToBringItBack() async throws {
        let (store, scratch, keys, path) = try setUp(bytes: 1_000_000)
        defer { withExtendedLifetime(scratch) {} }   // the scratch directory holds the archive
        let bucket = try await store.bucket(locked: false)
        _ = try await S3Push.push(path, to: S3Location(bucket: bucket, prefix: ""), client: try store.client(), options: S3Push.Options(),
                                  trusting: [keys.signer.publicKey])
        // SeaweedFS has no archive tier: the proxy answers as S3 does for an object in Glacier.
        let proxy = try FaultProxy(upstream: store.endpoint, faults: "archived-get=1")
        do {
            _ = try await store.client(endpoint: proxy.endpoint).getObject(bucket: bucket, key: "a.car", versionID: nil, range: 0..<100)
            Issue.record("an archived object was read")
        } catch let error as S3Error {
            #expect(error == .archived(key: "a.car", storageClass: "archive"))
            #expect(error.description.contains("restore-object"))
        }
        _ = try proxy.stop()
    }
}

/// awscli, from PyPI (make deps installs it), found on PATH by this user; nil when there is none.
func awsCLI() -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    return path.split(separator: ":").map { "\($0)/aws" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}
