#ifndef SLUICE_CRC32C_H
#define SLUICE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) continuing from `crc`.
/// Start with 0; the pre- and post-inversion are done inside, so calls chain:
/// crc(a ++ b) == sluice_crc32c(sluice_crc32c(0, a), b).
/// Uses the CPU's crc32 instruction when present, the portable table otherwise.
uint32_t sluice_crc32c(uint32_t crc, const void *data, size_t length);

/// The portable slicing-by-8 implementation, always available (tests compare it with the hardware one).
uint32_t sluice_crc32c_portable(uint32_t crc, const void *data, size_t length);

/// The hardware implementation; only valid to call when sluice_crc32c_hardware_available() is non-zero.
uint32_t sluice_crc32c_hardware(uint32_t crc, const void *data, size_t length);

/// Non-zero when this CPU has a crc32c instruction the library can use (SSE4.2 on x86-64, CRC on arm64).
int sluice_crc32c_hardware_available(void);

#ifdef __cplusplus
}
#endif

#endif
