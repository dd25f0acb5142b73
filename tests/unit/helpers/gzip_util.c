/* Test helper for gzip data: see gzip_util.h. */
#include "gzip_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

void gzip_member_append(struct cfw_buf *out, const char *in, size_t len, int level)
{
    z_stream zs;
    size_t cap = compressBound((uLong)len) + 64;
    unsigned char *tmp = malloc(cap);

    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = tmp;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(cfw_buf_append(out, tmp, cap - zs.avail_out), 0);
    deflateEnd(&zs);
    free(tmp);
}
