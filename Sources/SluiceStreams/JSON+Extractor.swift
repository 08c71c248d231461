// One-pass extraction of selected fields: the per-record hot path (see the design note in SluiceStreams.swift).

/// Pulls a fixed set of dotted paths out of JSON documents without building their trees.
///
/// The paths are compiled once into a trie of member names. `extract` then scans a document a single time:
/// member names are compared as raw UTF-8 with the trie's children; a member on no path is skipped (validated
/// but not materialised); a member that ends a path is parsed into a `JSONValue`; a member that only leads to
/// deeper paths is descended into when it is an object.
///
/// Agreement: for every document the full parser accepts, `extract(from:)[i] == JSONParser.parse(doc)[paths[i]]`
/// (checked against the full parser over random documents in the tests). The extractor validates the same
/// grammar, UTF-8 and limits, but it detects a duplicate member name only among the members it selects;
/// duplicates elsewhere in a document, which the full parser rejects, go unnoticed.
///
/// Thread-safe: an immutable value; `extract` keeps its scratch state on the stack.
public struct JSONFieldExtractor: Sendable {
    /// The paths, in the order results are returned.
    public let paths: [JSONPath]

    /// One trie node under construction.
    struct NodeBuilder {
        var children: [(key: [UInt8], node: Int)] = []
        var endingSlots: [Int] = []
        var continuing: [(slot: Int, rest: ArraySlice<String>)] = []
    }

    /// One trie node. Node 0 is the document root. A class so that visiting a node per record costs one
    /// reference count, not one per array inside it (the extractor is the per-record hot path).
    final class Node: Sendable {
        /// The member names leading to child nodes, as UTF-8, with each child's node index.
        let children: [(key: [UInt8], node: Int)]
        /// Result slots of the paths that end at this node.
        let endingSlots: [Int]
        /// Result slots of the paths that continue below this node, with the components that remain.
        let continuing: [(slot: Int, rest: ArraySlice<String>)]

        init(_ builder: NodeBuilder) {
            children = builder.children
            endingSlots = builder.endingSlots
            continuing = builder.continuing
        }
    }

    let nodes: [Node]

    /// Compiles `paths`; duplicates and paths that are prefixes of others are allowed.
    public init(paths: [JSONPath]) {
        self.paths = paths
        var nodes = [NodeBuilder()]
        for (slot, path) in paths.enumerated() {
            var current = 0
            for (depth, component) in path.components.enumerated() {
                nodes[current].continuing.append((slot, path.components[depth...]))
                let key = Array(component.utf8)
                if let existing = nodes[current].children.first(where: { $0.key == key }) {
                    current = existing.node
                } else {
                    nodes.append(NodeBuilder())
                    nodes[current].children.append((key, nodes.count - 1))
                    current = nodes.count - 1
                }
            }
            nodes[current].endingSlots.append(slot)
        }
        self.nodes = nodes.map(Node.init)
    }

    /// The value of each path in `bytes` (`.null` where absent), in the order of `paths`.
    public func extract(from bytes: UnsafeRawBufferPointer,
                        limits: JSONLimits = .default) throws(JSONParseError) -> [JSONValue] {
        var results: [JSONValue] = []
        try extract(from: bytes, into: &results, limits: limits)
        return results
    }

    /// As `extract(from:limits:)`, reusing `results`' storage (the hot path keeps one array per task).
    public func extract(from bytes: UnsafeRawBufferPointer, into results: inout [JSONValue],
                        limits: JSONLimits = .default) throws(JSONParseError) {
        if results.count == paths.count {
            for index in results.indices { results[index] = .null }
        } else {
            results = Array(repeating: .null, count: paths.count)
        }
        var scanner = try JSONScanner(bytes, limits: limits)
        try visit(node: 0, scanner: &scanner, results: &results)
        try scanner.expectEnd()
    }

    /// Handles the value at the scanner for trie node `node` (a value the paths reach or pass through).
    private func visit(node index: Int, scanner: inout JSONScanner,
                       results: inout [JSONValue]) throws(JSONParseError) {
        let node = nodes[index]
        let next = try scanner.peek()
        if next == UInt8(ascii: "{"), node.endingSlots.isEmpty {
            try visitObject(node: node, scanner: &scanner, results: &results)
        } else if !node.endingSlots.isEmpty || (next == UInt8(ascii: "[") && !node.children.isEmpty) {
            // Wanted whole, or an array that paths index into: build it and look the rest up.
            let value = try scanner.parseValue()
            for slot in node.endingSlots { results[slot] = value }
            for (slot, rest) in node.continuing { results[slot] = value.lookup(rest) }
        } else {
            try scanner.skipValue()  // a scalar, or nothing below is wanted: every path through here is null
        }
    }

    private func visitObject(node: Node, scanner: inout JSONScanner,
                             results: inout [JSONValue]) throws(JSONParseError) {
        try scanner.enter()
        scanner.index += 1  // "{"
        if try scanner.peek() == UInt8(ascii: "}") {
            scanner.index += 1
            scanner.depth -= 1
            return
        }
        var seen: UInt64 = 0  // children already matched in this object (the first 64)
        var count = 0
        repeat {
            guard count < scanner.limits.membersMax else { throw scanner.error(.tooManyMembers) }
            count += 1
            let keyStart = scanner.index
            guard try scanner.peek() == UInt8(ascii: "\"") else {
                throw scanner.error(.unexpectedByte(scanner.bytes[scanner.index]))
            }
            let raw = try scanner.scanString()
            try scanner.expect(UInt8(ascii: ":"))
            if let match = matchChild(node, raw, scanner) {
                if match < 64 {
                    let bit: UInt64 = 1 << UInt64(match)
                    if seen & bit != 0 {
                        throw JSONParseError(.duplicateKey(scanner.decodeString(raw)), at: keyStart)
                    }
                    seen |= bit
                }
                try visit(node: node.children[match].node, scanner: &scanner, results: &results)
            } else {
                try scanner.skipValue()
            }
        } while try !scanner.endOfContainer(UInt8(ascii: "}"))
        scanner.depth -= 1
    }

    /// The index in `node.children` whose name equals the scanned member name.
    private func matchChild(_ node: Node, _ raw: JSONScanner.RawString, _ scanner: JSONScanner) -> Int? {
        if raw.escaped {
            let name = Array(scanner.decodeString(raw).utf8)
            return node.children.firstIndex { $0.key == name }
        }
        let name = UnsafeRawBufferPointer(rebasing: scanner.bytes[raw.start..<raw.end])
        // Compared over contiguous bytes, length first: most members of a record are on no path.
        return node.children.firstIndex { child in
            child.key.count == name.count
                && child.key.withUnsafeBytes { JSONValue.compareBytes($0, name) == 0 }
        }
    }
}
