/* Test helper: gzip data made with zlib, for the tests that read compressed input. */
#ifndef CFW_TEST_GZIP_UTIL_H
#define CFW_TEST_GZIP_UTIL_H

#include <stddef.h>

#include "cfwatchd/common.h"

/* Appends one gzip member of in to out (zlib, windowBits 15 + 16: the gzip wrapper). */
void gzip_member_append(struct cfw_buf *out, const char *in, size_t len, int level);

#endif
