import SluiceCore

/// The producer-state snapshot a partition writes at clean shutdown (`producer-state.snapshot`, spec in
/// storage-format/protocol.md "Producer-state snapshot"), so the next start does not scan every batch
/// header of the log to rebuild idempotent-producer state.
///
/// Layout, big-endian: magic "SLPS", version u16 = 1, flags u16 = 0, offset i64 (the log end offset the
/// state is valid for), producer count u32; per producer: id i64, epoch i16, last offset i64, batch
/// count u8, per batch: first sequence i32, last sequence i32, first offset i64, last offset i64; then a
/// CRC-32C (u32) of everything before it.
extension ProducerStateTable {
    static let snapshotFile = "producer-state.snapshot"
    static let snapshotMagic: [UInt8] = Array("SLPS".utf8)
    static let snapshotVersion: UInt16 = 1
    /// Header (magic, version, flags, offset, count) and the trailing CRC.
    static let snapshotFixedBytes = 4 + 2 + 2 + 8 + 4 + 4
    static let snapshotBatchBytes = 4 + 4 + 8 + 8
    /// Largest snapshot read back: every producer remembered with every batch.
    static var snapshotBytesMax: Int {
        snapshotFixedBytes + (producersMax + forgetBatch) * (8 + 2 + 8 + 1 + batchesRememberedMax * snapshotBatchBytes)
    }

    func encodeSnapshot(offset: Int64) -> [UInt8] {
        var bytes = Self.snapshotMagic
        bytes.appendBigEndian(Self.snapshotVersion)
        bytes.appendBigEndian(UInt16(0))
        bytes.appendBigEndian(offset)
        bytes.appendBigEndian(UInt32(producers.count))
        for (id, entry) in producers.sorted(by: { $0.key < $1.key }) {
            bytes.appendBigEndian(id)
            bytes.appendBigEndian(entry.epoch)
            bytes.appendBigEndian(entry.lastOffset)
            bytes.append(UInt8(entry.batches.count))
            for batch in entry.batches {
                bytes.appendBigEndian(batch.firstSequence)
                bytes.appendBigEndian(batch.lastSequence)
                bytes.appendBigEndian(batch.firstOffset)
                bytes.appendBigEndian(batch.lastOffset)
            }
        }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        bytes.appendBigEndian(crc)
        return bytes
    }

    /// The table and the offset it is valid for, or nil when the bytes are not a valid snapshot.
    static func decodeSnapshot(_ bytes: [UInt8]) -> (ProducerStateTable, offset: Int64)? {
        guard bytes.count >= snapshotFixedBytes, bytes.count <= snapshotBytesMax,
              Array(bytes[0..<4]) == snapshotMagic else { return nil }
        let body = bytes.count - 4
        let stored: UInt32 = bytes.getBigEndian(at: body)
        let computed = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        guard stored == computed else { return nil }
        return bytes.withUnsafeBytes { raw in
            var reader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[0..<body]), position: 4)
            guard reader.readBigEndian(UInt16.self) == snapshotVersion, reader.readBigEndian(UInt16.self) != nil,
                  let offset = reader.readBigEndian(Int64.self), let count = reader.readBigEndian(UInt32.self),
                  Int(count) <= producersMax + forgetBatch else { return nil }
            var table = ProducerStateTable()
            for _ in 0..<Int(count) {
                guard let id = reader.readBigEndian(Int64.self), let epoch = reader.readBigEndian(Int16.self),
                      let last = reader.readBigEndian(Int64.self), let batchCount = reader.readBigEndian(UInt8.self),
                      Int(batchCount) <= batchesRememberedMax else { return nil }
                var batches: [BatchMetadata] = []
                for _ in 0..<Int(batchCount) {
                    guard let firstSequence = reader.readBigEndian(Int32.self), let lastSequence = reader.readBigEndian(Int32.self),
                          let firstOffset = reader.readBigEndian(Int64.self), let lastOffset = reader.readBigEndian(Int64.self) else { return nil }
                    batches.append(BatchMetadata(firstSequence: firstSequence, lastSequence: lastSequence,
                                                 firstOffset: firstOffset, lastOffset: lastOffset))
                }
                table.restore(id: id, entry: Entry(epoch: epoch, batches: batches, lastOffset: last))
            }
            guard reader.remaining == 0 else { return nil }
            return (table, offset)
        }
    }
}
