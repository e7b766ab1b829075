#ifndef DISTRI_CPNGSHIM_H
#define DISTRI_CPNGSHIM_H

#include <stddef.h>
#include <stdint.h>

/* Result codes of the libpng wrappers. libpng reports errors with longjmp; these wrappers do the
 * setjmp in C so no longjmp ever crosses a Swift frame, free everything on error and return a code
 * plus a message. */
enum {
    CPNG_OK = 0,
    CPNG_ERR_NOT_PNG = 1,   /* the 8-byte PNG signature is missing */
    CPNG_ERR_TOO_LARGE = 2, /* width, height or pixel count above the caller's limits */
    CPNG_ERR_LIBPNG = 3,    /* libpng reported an error (bad CRC, bad chunk, bad zlib data, ...) */
    CPNG_ERR_NO_MEMORY = 4,
    CPNG_ERR_TRUNCATED = 5, /* the data ended before the image was complete */
    CPNG_ERR_ARGUMENT = 6,
};

/* What a decoded PNG looked like in the file (before the conversion to RGBA8). */
typedef struct {
    uint32_t width;
    uint32_t height;
    int bit_depth;
    int color_type;
    int interlace;
    int has_trns;
} cpng_info;

/* Decodes a PNG held in memory into a malloc'd RGBA 8-bit buffer (width * height * 4 bytes, rows
 * top to bottom), converting every kind: gray, gray+alpha, RGB, RGBA, palette, 1/2/4/8/16-bit,
 * interlaced, tRNS. 16-bit samples keep their high byte. On success *out_pixels must be freed with
 * cpng_free; on error nothing is left allocated and `message` holds a NUL-terminated reason. */
int cpng_decode_rgba8(const unsigned char *data, size_t size, uint32_t max_width, uint32_t max_height,
                      uint64_t max_pixels, cpng_info *out_info, unsigned char **out_pixels, char *message,
                      size_t message_size);

/* Checks that a PNG held in memory decodes completely (every chunk, CRC and row) under the same
 * limits as cpng_decode_rgba8, without converting or keeping pixels: rows are read one at a time into
 * a single row buffer. Fills *out_info. */
int cpng_validate(const unsigned char *data, size_t size, uint32_t max_width, uint32_t max_height,
                  uint64_t max_pixels, cpng_info *out_info, char *message, size_t message_size);

/* Encodes RGBA 8-bit pixels (width * height * 4 bytes) as a non-interlaced RGBA 8-bit PNG in memory.
 * `level` is the zlib level (0-9), `filters` a libpng PNG_FILTER_* mask, `strategy` a zlib strategy.
 * On success *out_data (free with cpng_free) holds *out_size bytes. */
int cpng_encode_rgba8(const unsigned char *pixels, uint32_t width, uint32_t height, int level, int filters,
                      int strategy, unsigned char **out_data, size_t *out_size, char *message,
                      size_t message_size);

void cpng_free(void *pointer);

/* A PNG written row by row (RGBA 8-bit, not interlaced): what it encodes collects in an output buffer
 * the caller drains with cpng_row_writer_take, so neither the image nor the whole file is ever held.
 * Every call returns a CPNG_* code and fills `message` on error; after an error the writer can only be
 * freed. */
typedef struct cpng_row_writer cpng_row_writer;

int cpng_row_writer_begin(uint32_t width, uint32_t height, int level, int filters, int strategy,
                          cpng_row_writer **out_writer, char *message, size_t message_size);

/* Encodes the next row (width * 4 bytes). */
int cpng_row_writer_row(cpng_row_writer *writer, const unsigned char *row, char *message, size_t message_size);

/* Ends the file (after the last row). */
int cpng_row_writer_end(cpng_row_writer *writer, char *message, size_t message_size);

/* The bytes encoded since the last take: *out_data (valid until the next call on the writer) and
 * *out_size; the buffer is then emptied. */
void cpng_row_writer_take(cpng_row_writer *writer, const unsigned char **out_data, size_t *out_size);

void cpng_row_writer_free(cpng_row_writer *writer);

/* A PNG file read row by row: only 8-bit RGBA, not interlaced (the covers Distri writes), within the
 * limits. */
typedef struct cpng_row_reader cpng_row_reader;

int cpng_row_reader_open(const char *path, uint32_t max_width, uint32_t max_height, uint64_t max_pixels,
                         cpng_info *out_info, cpng_row_reader **out_reader, char *message, size_t message_size);

/* Reads the next row (width * 4 bytes) into `row`. */
int cpng_row_reader_row(cpng_row_reader *reader, unsigned char *row, char *message, size_t message_size);

void cpng_row_reader_free(cpng_row_reader *reader);

#endif
