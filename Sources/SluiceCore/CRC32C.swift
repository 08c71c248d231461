import CSluiceCRC32C

/// CRC-32C (Castagnoli), the checksum of record batches and checkpoint files.
///
/// Uses the CPU's crc32 instruction where present (SSE4.2, arm64 CRC) and a portable slicing-by-8
/// table otherwise; both live in the `CSluiceCRC32C` C target and are checked against each other by tests.
public enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (0 to start).
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return sluice_crc32c(crc, base, bytes.count)
    }

    /// The checksum of a byte array, continuing from `crc` (0 to start).
    @inlinable
    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The portable implementation, whatever the CPU offers.
    public static func portableChecksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return sluice_crc32c_portable(crc, base, bytes.count)
    }

    /// The hardware implementation, or nil when this CPU has no crc32c instruction.
    public static func hardwareChecksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32? {
        guard hardwareAvailable else { return nil }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return sluice_crc32c_hardware(crc, base, bytes.count)
    }

    /// Whether the CPU's crc32c instruction is used.
    public static var hardwareAvailable: Bool { sluice_crc32c_hardware_available() != 0 }
}
