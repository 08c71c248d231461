import SluiceCore

/// Static cluster membership: every broker of the cluster by node id, with the address the others and
/// clients reach it at (like Kafka's advertised listener, not necessarily the address it binds).
///
/// Written `ID@HOST:PORT,ID@HOST:PORT,...` in the `cluster` setting (`--cluster`, `SLUICE_CLUSTER`, the
/// TOML file). Membership is static: every broker must be started with the same list, and changing it
/// means restarting the cluster; the metadata Raft group and every partition's group draw their voters
/// from it.
///
/// Invariants (checked by `parse` and `init(members:)`): 1...`membersMax` members sorted by id; ids in
/// 1...Int32.max and unique; ports in 1...65535; `host:port` addresses unique (host compared without case).
public struct ClusterConfig: Sendable, Hashable, CustomStringConvertible {
    /// One broker of the cluster.
    public struct Member: Sendable, Hashable, CustomStringConvertible {
        /// Node id, as in `--node-id`.
        public var id: Int32
        /// Host others connect to: a name or an IP address.
        public var host: String
        /// Port others connect to.
        public var port: Int

        /// Makes a member; `ClusterConfig.init(members:)` checks it.
        public init(id: Int32, host: String, port: Int) {
            self.id = id
            self.host = host
            self.port = port
        }

        /// `host:port`.
        public var address: String { "\(host):\(port)" }
        /// `id@host:port`, the form it is written in.
        public var description: String { "\(id)@\(host):\(port)" }
    }

    /// Why a member list was refused, in words that say how to write it.
    public struct Error: Swift.Error, CustomStringConvertible, Sendable, Hashable {
        /// The readable reason, e.g. `entry 2 '2@host' has no port; write ID@HOST:PORT`.
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Most brokers in a cluster. Every partition group's heartbeats fan out to its replicas, and the
    /// metadata group's to every member; beyond a few dozen voters Raft spends its time on quorum traffic.
    public static let membersMax = 64
    /// Longest host, in UTF-8 bytes: the longest DNS name.
    public static let hostBytesMax = 253
    /// Valid node ids in a cluster. 0 stays free as "no node" (a default `node-id` of a single broker).
    public static let idRange: ClosedRange<Int32> = 1...Int32.max
    /// Valid ports of a member: 0 ("any free port") cannot be advertised.
    public static let portRange = 1...65535

    /// The members, sorted by id.
    public let members: [Member]

    /// A cluster of `members` (any order; kept sorted by id), checked like `parse` checks text; entries
    /// in errors are counted from 1 in the order given.
    public init(members: [Member]) throws(Error) {
        guard !members.isEmpty else { throw Error("names no brokers; write ID@HOST:PORT,ID@HOST:PORT,...") }
        guard members.count <= Self.membersMax else {
            throw Error("lists \(members.count) brokers; at most \(Self.membersMax) are supported")
        }
        for (index, member) in members.enumerated() {
            try Self.checkRanges(member, entry: "entry \(index + 1) '\(member)'")
        }
        try Self.checkUnique(members)
        self.members = members.sorted { $0.id < $1.id }
        assert(zip(self.members, self.members.dropFirst()).allSatisfy { $0.id < $1.id })
    }

    /// Reads `ID@HOST:PORT,ID@HOST:PORT,...`; blanks around entries are ignored.
    public static func parse(_ text: String) throws(Error) -> ClusterConfig {
        // Count before splitting, so a huge value is refused without building a huge array.
        let entryCount = text.utf8.reduce(1) { $1 == UInt8(ascii: ",") ? $0 + 1 : $0 }
        guard entryCount <= membersMax else {
            throw Error("lists \(entryCount) brokers; at most \(membersMax) are supported")
        }
        var members: [Member] = []
        for (index, rawEntry) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            members.append(try parseEntry(rawEntry.trimmed(), number: index + 1))
        }
        return try ClusterConfig(members: members)
    }

    /// The member with node id `id`, if there is one.
    public func member(_ id: Int32) -> Member? {
        members.first { $0.id == id }
    }

    /// Every member but `id`: whom node `id` replicates to and campaigns with.
    public func peers(of id: Int32) -> [Member] {
        precondition(member(id) != nil, "node \(id) is not a member of \(self)")
        return members.filter { $0.id != id }
    }

    /// The node ids, ascending.
    public var ids: [Int32] { members.map(\.id) }

    /// How many members make a majority: a write acknowledged by this many survives the loss of any
    /// `members.count - quorum` brokers.
    public var quorum: Int { members.count / 2 + 1 }

    /// The canonical text form, sorted by id; `parse` reads it back to an equal value.
    public var description: String { members.map(\.description).joined(separator: ",") }

    /// CRC-32C of the member ids in order, as decimal text joined by commas ("1,2,3"): what every
    /// broker's Raft groups vote with. Addresses are left out, since they may change between restarts.
    public var votersChecksum: UInt32 { CRC32C.checksum(Array(ids.map { "\($0)" }.joined(separator: ",").utf8)) }

    /// One `ID@HOST:PORT` entry; `number` counts from 1 for the messages.
    private static func parseEntry(_ entry: String, number: Int) throws(Error) -> Member {
        let how = "write ID@HOST:PORT"
        guard !entry.isEmpty else { throw Error("entry \(number) is empty; \(how)") }
        let name = "entry \(number) '\(entry)'"
        guard let at = entry.firstIndex(of: "@") else { throw Error("\(name) has no node id; \(how)") }
        let idText = entry[..<at]
        guard let id = Int32(idText), idRange.contains(id) else {
            throw Error("\(name): node id '\(idText)' must be an integer in \(idRange.lowerBound)...\(idRange.upperBound)")
        }
        let address = entry[entry.index(after: at)...]
        // The last ':' ends the host, so IPv6 hosts need brackets: "1@[::1]:9401".
        guard let colon = address.lastIndex(of: ":"), address.index(after: colon) < address.endIndex,
              !address.hasSuffix("]") else {
            throw Error("\(name) has no port; \(how)")
        }
        let host = String(address[..<colon])
        guard !host.isEmpty else { throw Error("\(name) has no host; \(how)") }
        let portText = address[address.index(after: colon)...]
        guard let port = Int(portText) else {
            throw Error("\(name): port '\(portText)' must be an integer in \(portRange.lowerBound)...\(portRange.upperBound)")
        }
        let member = Member(id: id, host: host, port: port)
        try checkRanges(member, entry: name)
        return member
    }

    /// The per-member rules; `entry` names the member in the message.
    private static func checkRanges(_ member: Member, entry: String) throws(Error) {
        guard idRange.contains(member.id) else {
            throw Error("\(entry): node id '\(member.id)' must be an integer in \(idRange.lowerBound)...\(idRange.upperBound)")
        }
        guard !member.host.isEmpty else { throw Error("\(entry) has no host; write ID@HOST:PORT") }
        guard member.host.utf8.count <= hostBytesMax else {
            throw Error("\(entry): host is longer than \(hostBytesMax) bytes")
        }
        // Names, IPv4 and bracketed IPv6 need nothing else; '@', ',' or blanks inside mean a typo.
        guard member.host.unicodeScalars.allSatisfy(isHostScalar) else {
            throw Error("\(entry): host '\(member.host)' may only hold letters, digits and . - _ : [ ]")
        }
        guard portRange.contains(member.port) else {
            throw Error("\(entry): port '\(member.port)' must be an integer in \(portRange.lowerBound)...\(portRange.upperBound)")
        }
    }

    private static func isHostScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || ".-_:[]".unicodeScalars.contains(scalar))
    }

    /// No two members share an id or an address; entries count from 1 in the order given.
    private static func checkUnique(_ members: [Member]) throws(Error) {
        var entryById: [Int32: Int] = [:]
        var entryByAddress: [String: Int] = [:]
        for (index, member) in members.enumerated() {
            let number = index + 1
            if let earlier = entryById[member.id] {
                throw Error("entry \(number) '\(member)' repeats node id \(member.id) of entry \(earlier)")
            }
            let address = "\(member.host.lowercased()):\(member.port)"
            if let earlier = entryByAddress[address] {
                throw Error("entry \(number) '\(member)' repeats address \(member.address) of entry \(earlier)")
            }
            entryById[member.id] = number
            entryByAddress[address] = number
        }
    }
}
