#ifndef SLUICE_SYS_H
#define SLUICE_SYS_H

#include <stdint.h>

/// Starts writeback of a file range without waiting (Linux sync_file_range with
/// SYNC_FILE_RANGE_WRITE, a GNU extension Swift's Glibc module does not expose). Returns 0, or -1 with
/// errno set; a no-op returning 0 where the call does not exist.
int sluice_start_writeback(int fd, int64_t offset, int64_t count);

#endif
