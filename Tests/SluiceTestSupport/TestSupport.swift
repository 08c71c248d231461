import SluiceCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64: a small, fast, seedable generator. Tests print the seed in every failure message so a
/// failing case can be replayed with `SLUICE_TEST_SEED=<seed>`.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public let seed: UInt64
    private var generator: SplitMix64

    public init(seed: UInt64) {
        self.seed = seed
        self.generator = SplitMix64(seed: seed)
    }

    /// Uses `SLUICE_TEST_SEED` when set, otherwise a fresh seed from the system generator.
    public static func fromEnvironment() -> SeededRandom {
        if let text = getenv("SLUICE_TEST_SEED").map({ String(cString: $0) }), let seed = UInt64(text) {
            return SeededRandom(seed: seed)
        }
        return SeededRandom(seed: UInt64.random(in: 0...UInt64.max))
    }

    public mutating func next() -> UInt64 { generator.next() }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// `count` random bytes, eight per call of the generator (`bytes(_:)` spends one call per byte).
    public mutating func fastBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = next()
            for _ in 0..<min(8, count - i) {
                bytes[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return bytes
    }

    /// A uniformly random integer in `range`.
    public mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }

    /// true with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
}

/// `bytes` with its CRC field recomputed, so a change reaches the checks behind the CRC.
public func withFixedCRC(_ bytes: [UInt8]) -> [UInt8] {
    var bytes = bytes
    let crc = bytes.withUnsafeBytes { RecordBatch.computeCRC($0) }
    bytes.setBigEndian(crc, at: RecordBatchHeader.Field.crc)
    return bytes
}


/// A fresh directory under the system temporary directory; `remove()` deletes it recursively.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "sluice-test") {
        var template = Array("\(tmpBase())/\(label)-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return nil as String? }
            return mkdtemp(base).map { String(cString: $0) }
        }
        guard let created else { preconditionFailure("mkdtemp failed: \(errno)") }
        path = created
    }

    /// A path inside this directory.
    public func child(_ name: String) -> String { "\(path)/\(name)" }

    public func remove() {
        removeRecursively(path)
    }
}

private func tmpBase() -> String {
    if let dir = getenv("TMPDIR").map({ String(cString: $0) }), !dir.isEmpty { return dir }
    return "/tmp"
}

/// `rm -rf path`.
public func removeRecursively(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if (info.st_mode & S_IFMT) == S_IFDIR, let dir = opendir(path) {
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names { removeRecursively("\(path)/\(name)") }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// The directory holding the built products (`.build/<triple>/debug`): the test binary lives there, and
/// so do the executables (`sluice-log`) that end-to-end tests start. `SLUICE_BIN_DIR` overrides it.
public func builtProductsDirectory() -> String {
    if let dir = getenv("SLUICE_BIN_DIR").map({ String(cString: $0) }), !dir.isEmpty { return dir }
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    precondition(count > 0, "cannot read /proc/self/exe")
    let exe = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    // …/debug/SluicePackageTests.xctest (a file on Linux) → …/debug
    var components = exe.split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast()
    return components.joined(separator: "/")
}

/// Reads a whole file into memory (test fixtures, golden vectors).
public func readFileBytes(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
        if n < chunk.count { break }
    }
    return bytes
}

/// Writes bytes to a file, replacing it.
@discardableResult
public func writeFileBytes(_ path: String, _ bytes: [UInt8]) -> Bool {
    guard let file = fopen(path, "wb") else { return false }
    defer { fclose(file) }
    return fwrite(bytes, 1, bytes.count, file) == bytes.count
}

/// The repository root (for fixtures under storage-format/), found from this source file's path.
public func repositoryRoot(file: String = #filePath) -> String {
    var components = file.split(separator: "/", omittingEmptySubsequences: false)
    // …/Tests/SluiceTestSupport/TestSupport.swift → …
    components.removeLast(3)
    return components.joined(separator: "/")
}

/// The example processor query of ARCHITECTURE.md ("Processors"), which the parser, binder, engine, CLI
/// and end-to-end tests all run.
public let architectureExampleQuery = """
    INSERT INTO clicks_per_user
    SELECT user, COUNT(*) AS clicks, SUM(amount) AS total
    FROM clicks
    WHERE action = 'click'
    GROUP BY user, TUMBLE(ts, INTERVAL '10' SECOND)
    EMIT FINAL
    """

/// Ports below Linux's ephemeral range (32768...60999 by default), handed out at most once per process.
private let reservedPorts = Mutex<Set<Int>>([])
/// Where `freeLoopbackPort` looks: below the ephemeral range, so that no outgoing connection of a test
/// (a client, a broker's peer connection) can take a port between the check and the broker's bind.
public let testPortRange = 20_000..<32_000

/// A loopback port that was free a moment ago, below the ephemeral range and never handed out before in
/// this process. Cluster members need their ports before they start (each is in every member's
/// configuration), so the port cannot come from binding port 0 when the broker starts.
public func freeLoopbackPort() -> Int {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<1_000 {
        let port = Int.random(in: testPortRange, using: &generator)
        guard reservedPorts.withLock({ $0.insert(port).inserted }) else { continue }
        if loopbackPortBindable(port) { return port }
    }
    preconditionFailure("no free loopback port in \(testPortRange) after 1000 tries")
}

/// Whether 127.0.0.1:`port` can be bound now.
private func loopbackPortBindable(_ port: Int) -> Bool {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    precondition(fd >= 0, "socket failed: \(errno)")
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 }
    }
}

