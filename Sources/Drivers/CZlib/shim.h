#include <zlib.h>

/// deflateInit2 and inflateInit2 are macros Swift cannot call; these wrap them.
static inline int mingus_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

static inline int mingus_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}
