import SluiceSQL

// Output records (issue 4, section 2: "Output").
//
// Values are compact JSON objects: the projection's columns in SELECT order under their names, then
// `window_start` and `window_end` (epoch ms) for windowed queries. `SELECT *` passes the input value through
// byte for byte.
//
// Keys:
// - stateless queries and late records: the input key, unchanged;
// - aggregating queries, one GROUP BY key: a string is written as its raw UTF-8 (no quotes), so a derived
//   topic grouped by `user` is keyed exactly like a source keyed by user id; any other value as its JSON
//   text (`42`, `true`, `[1,2]`); a NULL key as no key;
// - several GROUP BY keys: the JSON array of their values (`["alice",3]`);
// - no GROUP BY key: no key.
// (The string rule means the string "42" and the number 42 give the same key bytes; the value's columns
// still tell them apart.)

extension TaskPlan {
    /// The output of one stateless row.
    func statelessOutput(_ record: InputRecordView, row: RowContext) -> OutputRecord {
        let value: [UInt8]
        switch plan.projection {
        case .wildcard:
            value = record.value.map { Array($0) } ?? []
        case .columns(let columns):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(64)
            for (index, column) in columns.enumerated() {
                bytes.append(contentsOf: columnPrefixes[index])
                Evaluator.evaluate(column.expr, in: row).write(to: &bytes)
            }
            if columns.isEmpty { bytes.append(UInt8(ascii: "{")) }
            bytes.append(UInt8(ascii: "}"))
            value = bytes
        }
        return OutputRecord(destination: .sink, key: record.key.map { Array($0) }, value: value,
                            timestampMs: record.timestampMs)
    }

    /// The sink record of an aggregate result, or nil when HAVING rejects it.
    func resultOutput(_ result: WindowResult, timestampMs: Int64) -> OutputRecord? {
        let keyCount = keys.count
        let context = ResultContext(key: result.key, keyCount: keyCount, values: result.values,
                                    window: isWindowed ? result.window : nil)
        if let having, !Evaluator.isTrue(having, in: context) { return nil }
        var value: [UInt8] = []
        value.reserveCapacity(96)
        var columnCount = 0
        if case .columns(let columns) = plan.projection {
            for (index, column) in columns.enumerated() {
                value.append(contentsOf: columnPrefixes[index])
                Evaluator.evaluate(column.expr, in: context).write(to: &value)
            }
            columnCount = columns.count
        }
        if isWindowed {
            value.append(contentsOf: (columnCount == 0 ? "{\"window_start\":" : ",\"window_start\":").utf8)
            JSONValue.writeInteger(result.window.start, to: &value)
            value.append(contentsOf: ",\"window_end\":".utf8)
            JSONValue.writeInteger(result.window.end, to: &value)
        } else if columnCount == 0 {
            value.append(UInt8(ascii: "{"))
        }
        value.append(UInt8(ascii: "}"))
        return OutputRecord(destination: .sink, key: Self.outputKey(result.key, keyCount: keyCount), value: value,
                            timestampMs: timestampMs)
    }

    /// The output key of a group (see the notes at the top of ProcessorTask+Output.swift).
    static func outputKey(_ key: JSONValue, keyCount: Int) -> [UInt8]? {
        guard keyCount > 0 else { return nil }
        if keyCount == 1 {
            switch key {
            case .null: return nil
            case .string(let text): return Array(text.utf8)
            default: break
            }
        }
        var bytes: [UInt8] = []
        key.write(to: &bytes)
        return bytes
    }
}

extension ProcessorTask {
    /// The record for `late_records`: the input's key, value (empty when it has none) and timestamp.
    static func lateCopy(of record: InputRecordView) -> OutputRecord {
        OutputRecord(destination: .late, key: record.key.map { Array($0) }, value: record.value.map { Array($0) } ?? [],
                     timestampMs: record.timestampMs)
    }
}
