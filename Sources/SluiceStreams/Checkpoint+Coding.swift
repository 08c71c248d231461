import SluiceCore

// The byte-level pieces of the processor checkpoint (storage-format/processor-checkpoint.md): big-endian
// integers, values and accumulators. The reader checks every length against the bytes that remain, so a
// damaged count can neither over-allocate nor read out of bounds; every failure is `corruptCheckpoint`.

/// Appends checkpoint fields.
struct CheckpointWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { bytes.appendBigEndian(value) }
    mutating func u32(_ value: UInt32) { bytes.appendBigEndian(value) }
    mutating func i32(_ value: Int32) { bytes.appendBigEndian(value) }
    mutating func i64(_ value: Int64) { bytes.appendBigEndian(value) }
    mutating func u64(_ value: UInt64) { bytes.appendBigEndian(value) }
    mutating func bool(_ value: Bool) { u8(value ? 1 : 0) }

    /// A u32 element count.
    mutating func count(_ count: Int) {
        precondition(count >= 0 && count <= Int(UInt32.max), "checkpoint count out of range: \(count)")
        u32(UInt32(count))
    }

    /// A u32 byte length, then the UTF-8 bytes.
    mutating func string(_ text: String) {
        count(text.utf8.count)
        bytes.append(contentsOf: text.utf8)
    }

    /// A JSON value: a tag byte, then its payload (see the spec's "Values" table).
    mutating func value(_ value: JSONValue) {
        switch value {
        case .null: u8(0)
        case .bool(let flag): u8(flag ? 2 : 1)
        case .int(let integer):
            u8(3)
            i64(integer)
        case .number(let double):
            u8(4)
            u64(double.bitPattern)
        case .string(let text):
            u8(5)
            string(text)
        case .array(let elements):
            u8(6)
            count(elements.count)
            for element in elements { self.value(element) }
        case .object(let object):
            u8(7)
            count(object.count)
            for member in object.members {
                string(member.key)
                self.value(member.value)
            }
        }
    }

    /// An accumulator's state: a tag byte, then its payload (see the spec's "Accumulators" table).
    mutating func accumulator(_ accumulator: Accumulator) {
        switch accumulator.state {
        case .count(let count):
            u8(0)
            i64(count)
        case .distinct(let set, _):
            u8(1)
            count(set.count)
            for element in set.sorted(by: { JSONValue.compare($0, $1) < 0 }) { value(element) }
        case .sum(let sum):
            u8(2)
            i64(sum.integer)
            u64(sum.floating.bitPattern)
            bool(sum.isFloating)
            i64(sum.count)
        case .extreme(let extreme):
            u8(3)
            bool(extreme != nil)
            if let extreme { value(extreme) }
        case .positioned(let positioned):
            u8(4)
            bool(positioned != nil)
            if let positioned {
                value(positioned.value)
                i64(positioned.eventTimeMs)
                i64(positioned.sequence)
            }
        }
    }
}

/// Reads checkpoint fields from `bytes[position..<end]`.
struct CheckpointReader {
    let bytes: [UInt8]
    var position: Int
    let end: Int

    /// The deepest nesting of values accepted (the JSON parser allows 64; group keys add one level).
    static let valueDepthMax = 128

    var remaining: Int { end - position }
    var isAtEnd: Bool { position == end }

    static func corrupt(_ reason: String) -> TaskError { .corruptCheckpoint(reason) }

    // `what` names the field for the error message; an autoclosure, so that decoding builds no strings.
    private mutating func fixed<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws(TaskError) -> T {
        guard remaining >= MemoryLayout<T>.size else { throw Self.corrupt("truncated in \(what())") }
        defer { position += MemoryLayout<T>.size }
        return bytes.getBigEndian(at: position, as: T.self)
    }

    mutating func u8(_ what: @autoclosure () -> String) throws(TaskError) -> UInt8 { try fixed(UInt8.self, what()) }
    mutating func u16(_ what: @autoclosure () -> String) throws(TaskError) -> UInt16 { try fixed(UInt16.self, what()) }
    mutating func u32(_ what: @autoclosure () -> String) throws(TaskError) -> UInt32 { try fixed(UInt32.self, what()) }
    mutating func i32(_ what: @autoclosure () -> String) throws(TaskError) -> Int32 { try fixed(Int32.self, what()) }
    mutating func i64(_ what: @autoclosure () -> String) throws(TaskError) -> Int64 { try fixed(Int64.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws(TaskError) -> UInt64 { try fixed(UInt64.self, what()) }

    mutating func bool(_ what: @autoclosure () -> String) throws(TaskError) -> Bool {
        switch try u8(what()) {
        case 0: return false
        case 1: return true
        case let other: throw Self.corrupt("\(what()) is \(other), not 0 or 1")
        }
    }

    /// A u32 count of elements that take at least `minimumBytes` each: never more than the bytes left can hold.
    mutating func count(_ what: @autoclosure () -> String, minimumBytes: Int) throws(TaskError) -> Int {
        let count = Int(try u32(what()))
        guard count <= remaining / max(1, minimumBytes) else {
            throw Self.corrupt("\(what()) \(count) exceeds what the remaining \(remaining) bytes can hold")
        }
        return count
    }

    /// `count` raw bytes.
    mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws(TaskError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw Self.corrupt("truncated in \(what())") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func string(_ what: @autoclosure () -> String) throws(TaskError) -> String {
        let length = try count("\(what()) length", minimumBytes: 1)
        let raw = try bytes(length, what())
        guard let text = String(validating: raw, as: UTF8.self) else { throw Self.corrupt("\(what()) is not UTF-8") }
        return text
    }

    mutating func value(_ what: @autoclosure () -> String, depth: Int = 0) throws(TaskError) -> JSONValue {
        guard depth < Self.valueDepthMax else { throw Self.corrupt("\(what()) nests deeper than \(Self.valueDepthMax)") }
        switch try u8("\(what()) tag") {
        case 0: return .null
        case 1: return .bool(false)
        case 2: return .bool(true)
        case 3: return .int(try i64(what()))
        case 4:
            let double = Double(bitPattern: try u64(what()))
            guard !double.isNaN else { throw Self.corrupt("\(what()) is NaN") }
            return .number(double)
        case 5: return .string(try string(what()))
        case 6:
            let count = try count("\(what()) element count", minimumBytes: 1)
            var elements: [JSONValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try value(what(), depth: depth + 1)) }
            return .array(elements)
        case 7:
            let count = try count("\(what()) member count", minimumBytes: 5)
            var members: [JSONObject.Member] = []
            members.reserveCapacity(count)
            for _ in 0..<count {
                let key = try string("\(what()) member name")
                members.append(JSONObject.Member(key: key, value: try value(what(), depth: depth + 1)))
            }
            return .object(JSONObject(members))
        case let tag:
            throw Self.corrupt("\(what()) has unknown tag \(tag)")
        }
    }

    /// An accumulator of `function`; its state tag must be the one the function uses.
    mutating func accumulator(_ function: AggregateFunction) throws(TaskError) -> Accumulator {
        var accumulator = Accumulator(function)
        let tag = try u8("accumulator tag")
        let state: Accumulator.State
        switch (tag, accumulator.state) {
        case (0, .count):
            state = .count(try i64("count"))
        case (1, .distinct):
            state = try distinctState()
        case (2, .sum):
            let integer = try i64("sum"), floating = Double(bitPattern: try u64("sum")), isFloating = try bool("sum kind")
            state = .sum(Accumulator.Sum(integer: integer, floating: floating, isFloating: isFloating, count: try i64("sum count")))
        case (3, .extreme):
            // Not `? value : nil`: JSONValue is ExpressibleByNilLiteral, so that nil would be `.null`.
            var extreme: JSONValue? = Optional.none
            if try bool("extreme presence") { extreme = try value("extreme") }
            state = .extreme(extreme)
        case (4, .positioned):
            guard try bool("first/last presence") else {
                state = .positioned(nil)
                break
            }
            let value = try value("first/last value")
            state = .positioned(Accumulator.Positioned(value: value, eventTimeMs: try i64("first/last time"),
                                                       sequence: try i64("first/last sequence")))
        default:
            throw Self.corrupt("accumulator tag \(tag) does not fit \(function)")
        }
        accumulator.state = state
        return accumulator
    }

    private mutating func distinctState() throws(TaskError) -> Accumulator.State {
        let count = try count("distinct count", minimumBytes: 1)
        var set = Set<JSONValue>(minimumCapacity: count)
        var bytes = 0
        for _ in 0..<count {
            let element = try value("distinct value")
            guard set.insert(element).inserted else { throw Self.corrupt("distinct value \(element) repeats") }
            bytes += element.approximateBytes + Accumulator.distinctEntryOverheadBytes
        }
        return .distinct(set, bytes: bytes)
    }
}
