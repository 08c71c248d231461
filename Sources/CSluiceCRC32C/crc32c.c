// CRC-32C for record batches. Two implementations with one contract:
// - portable: slicing-by-8 over tables built once at load time;
// - hardware: the SSE4.2 `crc32` instruction on x86-64, the CRC extension on arm64.
// The dispatcher picks the hardware one when the CPU reports it; tests check both agree.
#include "sluice_crc32c.h"

#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table[8][256];

__attribute__((constructor)) static void sluice_crc32c_build_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        }
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int s = 1; s < 8; s++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[s][n] = c;
        }
    }
}

uint32_t sluice_crc32c_portable(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data;
    uint32_t c = ~crc;
    while (length > 0 && ((uintptr_t)p & 7) != 0) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        length--;
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        uint32_t lo = (uint32_t)word ^ c;
        uint32_t hi = (uint32_t)(word >> 32);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        length--;
    }
    return ~c;
}

#if defined(__x86_64__)
#include <cpuid.h>

__attribute__((target("sse4.2")))
uint32_t sluice_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t c = (uint32_t)~crc;
    while (length > 0 && ((uintptr_t)p & 7) != 0) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        length--;
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        length--;
    }
    return ~(uint32_t)c;
}

int sluice_crc32c_hardware_available(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        return 0;
    }
    return (ecx & bit_SSE4_2) != 0;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#include <asm/hwcap.h>

__attribute__((target("+crc")))
uint32_t sluice_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data;
    uint32_t c = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_arm_crc32cd(c, word);
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        c = __builtin_arm_crc32cb(c, *p++);
        length--;
    }
    return ~c;
}

int sluice_crc32c_hardware_available(void) {
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
}

#else

uint32_t sluice_crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    return sluice_crc32c_portable(crc, data, length);
}

int sluice_crc32c_hardware_available(void) {
    return 0;
}

#endif

uint32_t sluice_crc32c(uint32_t crc, const void *data, size_t length) {
    static int hardware = -1;
    int h = __atomic_load_n(&hardware, __ATOMIC_RELAXED);
    if (h < 0) {
        h = sluice_crc32c_hardware_available();
        __atomic_store_n(&hardware, h, __ATOMIC_RELAXED);
    }
    return h ? sluice_crc32c_hardware(crc, data, length) : sluice_crc32c_portable(crc, data, length);
}
