#include "cpngshim.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct {
    char *message;
    size_t message_size;
    int truncated;
} shim_error;

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
    shim_error *error;
} shim_reader;

typedef struct {
    unsigned char *data;
    size_t size;
    size_t capacity;
    int failed;
} shim_writer;

static void shim_set_message(char *message, size_t message_size, const char *text) {
    if (message == NULL || message_size == 0) return;
    snprintf(message, message_size, "%s", text == NULL ? "unknown libpng error" : text);
}

static void shim_error_fn(png_structp png, png_const_charp text) {
    shim_error *error = (shim_error *)png_get_error_ptr(png);
    if (error != NULL) shim_set_message(error->message, error->message_size, text);
    png_longjmp(png, 1);
}

static void shim_warning_fn(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void shim_read_fn(png_structp png, png_bytep out, png_size_t length) {
    shim_reader *reader = (shim_reader *)png_get_io_ptr(png);
    if (reader == NULL || length > reader->size - reader->offset) {
        if (reader != NULL && reader->error != NULL) reader->error->truncated = 1;
        png_error(png, "PNG data ends early (truncated)");
        return;
    }
    memcpy(out, reader->data + reader->offset, length);
    reader->offset += length;
}

static void shim_append(png_structp png, shim_writer *writer, png_bytep in, png_size_t length) {
    if (writer == NULL) png_error(png, "no output buffer");
    if (length > writer->capacity - writer->size) {
        size_t capacity = writer->capacity < 4096 ? 4096 : writer->capacity;
        while (capacity - writer->size < length) {
            if (capacity > ((size_t)-1) / 2) {
                writer->failed = 1;
                png_error(png, "output too large");
            }
            capacity *= 2;
        }
        unsigned char *grown = (unsigned char *)realloc(writer->data, capacity);
        if (grown == NULL) {
            writer->failed = 1;
            png_error(png, "out of memory growing the output buffer");
        }
        writer->data = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->data + writer->size, in, length);
    writer->size += length;
}

static void shim_write_fn(png_structp png, png_bytep in, png_size_t length) {
    shim_append(png, (shim_writer *)png_get_io_ptr(png), in, length);
}

static void shim_flush_fn(png_structp png) { (void)png; }

/* Creates libpng's write struct (`writing`) or read struct, reporting through `error`, and its info
 * struct. On CPNG_ERR_NO_MEMORY nothing is left allocated, both are NULL and `error` says why. */
static int shim_create_png(int writing, shim_error *error, png_structp *png, png_infop *info) {
    *png = writing ? png_create_write_struct(PNG_LIBPNG_VER_STRING, error, shim_error_fn, shim_warning_fn)
                   : png_create_read_struct(PNG_LIBPNG_VER_STRING, error, shim_error_fn, shim_warning_fn);
    *info = *png == NULL ? NULL : png_create_info_struct(*png);
    if (*info != NULL) return CPNG_OK;
    if (*png != NULL && writing) png_destroy_write_struct(png, NULL);
    if (*png != NULL && !writing) png_destroy_read_struct(png, NULL, NULL);
    *png = NULL;
    shim_set_message(error->message, error->message_size,
                     writing ? "out of memory creating the PNG writer" : "out of memory creating the PNG reader");
    return CPNG_ERR_NO_MEMORY;
}

/* Everything the decoder changes after setjmp lives in this context, owned by the caller of the
 * function that calls setjmp, so no automatic variable of that function changes between setjmp and
 * longjmp (C11 7.13.2.1). */
typedef struct {
    shim_error error;
    shim_reader reader;
    uint32_t max_width, max_height;
    uint64_t max_pixels;
    cpng_info *info;
    unsigned char *pixels;
    png_bytep *rows;
    int result;
    int validate_only;
} decode_context;

static int decode_inner(decode_context *ctx);

static int decode_common(const unsigned char *data, size_t size, uint32_t max_width, uint32_t max_height,
                         uint64_t max_pixels, cpng_info *out_info, unsigned char **out_pixels, char *message,
                         size_t message_size, int validate_only);

int cpng_decode_rgba8(const unsigned char *data, size_t size, uint32_t max_width, uint32_t max_height,
                      uint64_t max_pixels, cpng_info *out_info, unsigned char **out_pixels, char *message,
                      size_t message_size) {
    if (out_pixels == NULL) return CPNG_ERR_ARGUMENT;
    return decode_common(data, size, max_width, max_height, max_pixels, out_info, out_pixels, message, message_size,
                         0);
}

int cpng_validate(const unsigned char *data, size_t size, uint32_t max_width, uint32_t max_height,
                  uint64_t max_pixels, cpng_info *out_info, char *message, size_t message_size) {
    unsigned char *unused = NULL;
    return decode_common(data, size, max_width, max_height, max_pixels, out_info, &unused, message, message_size, 1);
}

static int decode_common(const unsigned char *data, size_t size, uint32_t max_width, uint32_t max_height,
                         uint64_t max_pixels, cpng_info *out_info, unsigned char **out_pixels, char *message,
                         size_t message_size, int validate_only) {
    if (out_pixels == NULL || out_info == NULL || (data == NULL && size > 0)) return CPNG_ERR_ARGUMENT;
    *out_pixels = NULL;
    memset(out_info, 0, sizeof(*out_info));
    if (message != NULL && message_size > 0) message[0] = 0;
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        shim_set_message(message, message_size, "not a PNG file (signature missing)");
        return CPNG_ERR_NOT_PNG;
    }

    /* Check the declared size before libpng allocates anything (libpng's own user-limit check would
     * only report "Invalid IHDR data"). */
    if (size >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        uint32_t width = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
        uint32_t height = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
        if (width > max_width || height > max_height || (uint64_t)width * (uint64_t)height > max_pixels) {
            out_info->width = width;
            out_info->height = height;
            shim_set_message(message, message_size, "image dimensions above the limit");
            return CPNG_ERR_TOO_LARGE;
        }
    }

    decode_context ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.error.message = message;
    ctx.error.message_size = message_size;
    ctx.reader.data = data;
    ctx.reader.size = size;
    ctx.reader.error = &ctx.error;
    ctx.max_width = max_width;
    ctx.max_height = max_height;
    ctx.max_pixels = max_pixels;
    ctx.info = out_info;
    ctx.result = CPNG_ERR_LIBPNG;
    ctx.validate_only = validate_only;
    int result = decode_inner(&ctx);
    if (result != CPNG_OK) {
        free(ctx.rows);
        free(ctx.pixels);
        if (result == CPNG_ERR_LIBPNG && ctx.error.truncated) result = CPNG_ERR_TRUNCATED;
        return result;
    }
    free(ctx.rows);
    *out_pixels = ctx.pixels;
    return CPNG_OK;
}

static int decode_inner(decode_context *ctx) {
    char *message = ctx->error.message;
    size_t message_size = ctx->error.message_size;
    png_structp png;
    png_infop info;
    int created = shim_create_png(0, &ctx->error, &png, &info);
    if (created != CPNG_OK) return created;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return ctx->result;
    }

    cpng_info *out_info = ctx->info;
    uint32_t max_width = ctx->max_width, max_height = ctx->max_height;
    uint64_t max_pixels = ctx->max_pixels;
    png_set_read_fn(png, &ctx->reader, shim_read_fn);
    png_set_user_limits(png, max_width, max_height);
    png_set_chunk_cache_max(png, 1000);
    png_set_chunk_malloc_max(png, 16u * 1024u * 1024u);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    out_info->width = width;
    out_info->height = height;
    out_info->bit_depth = bit_depth;
    out_info->color_type = color_type;
    out_info->interlace = interlace;
    int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    out_info->has_trns = has_trns;

    if (width == 0 || height == 0 || width > max_width || height > max_height ||
        (uint64_t)width * (uint64_t)height > max_pixels) {
        ctx->result = CPNG_ERR_TOO_LARGE;
        png_error(png, "image dimensions above the limit");
    }

    if (ctx->validate_only) {
        int passes = png_set_interlace_handling(png);
        png_read_update_info(png, info);
        ctx->pixels = (unsigned char *)malloc(png_get_rowbytes(png, info));
        if (ctx->pixels == NULL) {
            ctx->result = CPNG_ERR_NO_MEMORY;
            png_error(png, "out of memory for a row");
        }
        for (int pass = 0; pass < passes; pass++) {
            for (png_uint_32 y = 0; y < height; y++) png_read_row(png, ctx->pixels, NULL);
        }
        png_read_end(png, NULL);
        png_destroy_read_struct(&png, &info, NULL);
        free(ctx->pixels);
        ctx->pixels = NULL;
        return CPNG_OK;
    }

    png_set_expand(png); /* palette -> RGB, gray 1/2/4 -> 8, tRNS -> alpha */
    png_set_strip_16(png);
    png_set_gray_to_rgb(png);
    if ((color_type & PNG_COLOR_MASK_ALPHA) == 0 && !has_trns) png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t row_bytes = png_get_rowbytes(png, info);
    if (row_bytes != (size_t)width * 4u) {
        png_error(png, "unexpected row size after conversion to RGBA8");
    }
    ctx->pixels = (unsigned char *)malloc(row_bytes * (size_t)height);
    ctx->rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)height);
    if (ctx->pixels == NULL || ctx->rows == NULL) {
        ctx->result = CPNG_ERR_NO_MEMORY;
        png_error(png, "out of memory for the decoded pixels");
    }
    for (png_uint_32 y = 0; y < height; y++) ctx->rows[y] = ctx->pixels + (size_t)y * row_bytes;
    png_read_image(png, ctx->rows);
    png_read_end(png, NULL);

    png_destroy_read_struct(&png, &info, NULL);
    return CPNG_OK;
}

typedef struct {
    shim_error error;
    shim_writer writer;
    const unsigned char *pixels;
    uint32_t width, height;
    int level, filters, strategy;
    png_bytep *rows;
} encode_context;

static int encode_inner(encode_context *ctx);

int cpng_encode_rgba8(const unsigned char *pixels, uint32_t width, uint32_t height, int level, int filters,
                      int strategy, unsigned char **out_data, size_t *out_size, char *message,
                      size_t message_size) {
    if (out_data == NULL || out_size == NULL || pixels == NULL || width == 0 || height == 0 ||
        width > PNG_USER_WIDTH_MAX || height > PNG_USER_HEIGHT_MAX) {
        shim_set_message(message, message_size, "invalid arguments for PNG encoding");
        return CPNG_ERR_ARGUMENT;
    }
    *out_data = NULL;
    *out_size = 0;
    if (message != NULL && message_size > 0) message[0] = 0;

    encode_context ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.error.message = message;
    ctx.error.message_size = message_size;
    ctx.pixels = pixels;
    ctx.width = width;
    ctx.height = height;
    ctx.level = level;
    ctx.filters = filters;
    ctx.strategy = strategy;
    /* Start near the expected size (about half the raw pixels for photo-like covers) so the output
     * is not copied through a dozen doublings. */
    size_t estimate = (size_t)width * (size_t)height * 2u + 65536u;
    ctx.writer.data = (unsigned char *)malloc(estimate);
    ctx.writer.capacity = ctx.writer.data == NULL ? 0 : estimate;
    int result = encode_inner(&ctx);
    free(ctx.rows);
    if (result != CPNG_OK) {
        free(ctx.writer.data);
        return result;
    }
    *out_data = ctx.writer.data;
    *out_size = ctx.writer.size;
    return CPNG_OK;
}

static int encode_inner(encode_context *ctx) {
    char *message = ctx->error.message;
    size_t message_size = ctx->error.message_size;
    uint32_t width = ctx->width, height = ctx->height;
    png_structp png;
    png_infop info;
    int created = shim_create_png(1, &ctx->error, &png, &info);
    if (created != CPNG_OK) return created;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return ctx->writer.failed ? CPNG_ERR_NO_MEMORY : CPNG_ERR_LIBPNG;
    }

    png_set_write_fn(png, &ctx->writer, shim_write_fn, shim_flush_fn);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, ctx->level);
    png_set_compression_strategy(png, ctx->strategy);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, ctx->filters);
    png_write_info(png, info);

    ctx->rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)height);
    if (ctx->rows == NULL) {
        ctx->writer.failed = 1;
        png_error(png, "out of memory for row pointers");
    }
    for (png_uint_32 y = 0; y < height; y++) {
        ctx->rows[y] = (png_bytep)(ctx->pixels + (size_t)y * (size_t)width * 4u);
    }
    png_write_image(png, ctx->rows);
    png_write_end(png, NULL);

    png_destroy_write_struct(&png, &info);
    return CPNG_OK;
}

void cpng_free(void *pointer) { free(pointer); }

/* ---- Row by row ---- */

struct cpng_row_writer {
    png_structp png;
    png_infop info;
    shim_error error;
    shim_writer writer;
    /* Bytes of `writer` already handed out by cpng_row_writer_take (dropped at the next write). */
    size_t taken;
    int failed;
};

static void row_writer_write_fn(png_structp png, png_bytep in, png_size_t length) {
    struct cpng_row_writer *rows = (struct cpng_row_writer *)png_get_io_ptr(png);
    if (rows->taken > 0) {
        rows->writer.size = 0;
        rows->taken = 0;
    }
    shim_append(png, &rows->writer, in, length);
}

int cpng_row_writer_begin(uint32_t width, uint32_t height, int level, int filters, int strategy,
                          cpng_row_writer **out_writer, char *message, size_t message_size) {
    if (out_writer == NULL || width == 0 || height == 0 || width > PNG_USER_WIDTH_MAX ||
        height > PNG_USER_HEIGHT_MAX) {
        shim_set_message(message, message_size, "invalid arguments for PNG encoding");
        return CPNG_ERR_ARGUMENT;
    }
    *out_writer = NULL;
    struct cpng_row_writer *rows = (struct cpng_row_writer *)calloc(1, sizeof(struct cpng_row_writer));
    if (rows == NULL) {
        shim_set_message(message, message_size, "out of memory creating the PNG writer");
        return CPNG_ERR_NO_MEMORY;
    }
    rows->error.message = message;
    rows->error.message_size = message_size;
    int created = shim_create_png(1, &rows->error, &rows->png, &rows->info);
    if (created != CPNG_OK) {
        cpng_row_writer_free(rows);
        return created;
    }
    if (setjmp(png_jmpbuf(rows->png))) {
        int code = rows->writer.failed ? CPNG_ERR_NO_MEMORY : CPNG_ERR_LIBPNG;
        cpng_row_writer_free(rows);
        return code;
    }
    png_set_write_fn(rows->png, rows, row_writer_write_fn, shim_flush_fn);
    png_set_IHDR(rows->png, rows->info, width, height, 8, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(rows->png, level);
    png_set_compression_strategy(rows->png, strategy);
    png_set_filter(rows->png, PNG_FILTER_TYPE_BASE, filters);
    png_write_info(rows->png, rows->info);
    *out_writer = rows;
    return CPNG_OK;
}

int cpng_row_writer_row(cpng_row_writer *rows, const unsigned char *row, char *message, size_t message_size) {
    if (rows == NULL || rows->failed || row == NULL) {
        shim_set_message(message, message_size, "the PNG writer failed before");
        return CPNG_ERR_ARGUMENT;
    }
    rows->error.message = message;
    rows->error.message_size = message_size;
    if (setjmp(png_jmpbuf(rows->png))) {
        rows->failed = 1;
        return rows->writer.failed ? CPNG_ERR_NO_MEMORY : CPNG_ERR_LIBPNG;
    }
    png_write_row(rows->png, (png_const_bytep)row);
    return CPNG_OK;
}

int cpng_row_writer_end(cpng_row_writer *rows, char *message, size_t message_size) {
    if (rows == NULL || rows->failed) {
        shim_set_message(message, message_size, "the PNG writer failed before");
        return CPNG_ERR_ARGUMENT;
    }
    rows->error.message = message;
    rows->error.message_size = message_size;
    if (setjmp(png_jmpbuf(rows->png))) {
        rows->failed = 1;
        return rows->writer.failed ? CPNG_ERR_NO_MEMORY : CPNG_ERR_LIBPNG;
    }
    png_write_end(rows->png, NULL);
    return CPNG_OK;
}

void cpng_row_writer_take(cpng_row_writer *rows, const unsigned char **out_data, size_t *out_size) {
    if (rows->taken > 0) {
        rows->writer.size = 0;
        rows->taken = 0;
    }
    *out_data = rows->writer.data;
    *out_size = rows->writer.size;
    rows->taken = rows->writer.size;
}

void cpng_row_writer_free(cpng_row_writer *rows) {
    if (rows == NULL) return;
    if (rows->png != NULL) png_destroy_write_struct(&rows->png, rows->info != NULL ? &rows->info : NULL);
    free(rows->writer.data);
    free(rows);
}

struct cpng_row_reader {
    png_structp png;
    png_infop info;
    FILE *file;
    shim_error error;
    int failed;
};

void cpng_row_reader_free(cpng_row_reader *rows) {
    if (rows == NULL) return;
    if (rows->png != NULL) png_destroy_read_struct(&rows->png, rows->info != NULL ? &rows->info : NULL, NULL);
    if (rows->file != NULL) fclose(rows->file);
    free(rows);
}

int cpng_row_reader_open(const char *path, uint32_t max_width, uint32_t max_height, uint64_t max_pixels,
                         cpng_info *out_info, cpng_row_reader **out_reader, char *message, size_t message_size) {
    if (path == NULL || out_reader == NULL || out_info == NULL) {
        shim_set_message(message, message_size, "invalid arguments for PNG reading");
        return CPNG_ERR_ARGUMENT;
    }
    *out_reader = NULL;
    memset(out_info, 0, sizeof(*out_info));
    struct cpng_row_reader *rows = (struct cpng_row_reader *)calloc(1, sizeof(struct cpng_row_reader));
    if (rows == NULL) {
        shim_set_message(message, message_size, "out of memory creating the PNG reader");
        return CPNG_ERR_NO_MEMORY;
    }
    rows->file = fopen(path, "rb");
    if (rows->file == NULL) {
        cpng_row_reader_free(rows);
        shim_set_message(message, message_size, "cannot open the PNG file");
        return CPNG_ERR_ARGUMENT;
    }
    unsigned char signature[8];
    if (fread(signature, 1, 8, rows->file) != 8 || png_sig_cmp(signature, 0, 8) != 0) {
        cpng_row_reader_free(rows);
        shim_set_message(message, message_size, "not a PNG file (signature missing)");
        return CPNG_ERR_NOT_PNG;
    }
    rows->error.message = message;
    rows->error.message_size = message_size;
    int created = shim_create_png(0, &rows->error, &rows->png, &rows->info);
    if (created != CPNG_OK) {
        cpng_row_reader_free(rows);
        return created;
    }
    if (setjmp(png_jmpbuf(rows->png))) {
        cpng_row_reader_free(rows);
        return CPNG_ERR_LIBPNG;
    }
    png_init_io(rows->png, rows->file);
    png_set_sig_bytes(rows->png, 8);
    png_set_user_limits(rows->png, max_width, max_height);
    png_read_info(rows->png, rows->info);
    png_uint_32 width = png_get_image_width(rows->png, rows->info);
    png_uint_32 height = png_get_image_height(rows->png, rows->info);
    out_info->width = width;
    out_info->height = height;
    out_info->bit_depth = png_get_bit_depth(rows->png, rows->info);
    out_info->color_type = png_get_color_type(rows->png, rows->info);
    out_info->interlace = png_get_interlace_type(rows->png, rows->info) != PNG_INTERLACE_NONE;
    if ((uint64_t)width * (uint64_t)height > max_pixels) {
        cpng_row_reader_free(rows);
        shim_set_message(message, message_size, "image dimensions above the limit");
        return CPNG_ERR_TOO_LARGE;
    }
    if (out_info->bit_depth != 8 || out_info->color_type != PNG_COLOR_TYPE_RGB_ALPHA || out_info->interlace) {
        cpng_row_reader_free(rows);
        shim_set_message(message, message_size, "not an 8-bit RGBA PNG without interlacing (not a Distri cover)");
        return CPNG_ERR_ARGUMENT;
    }
    png_read_update_info(rows->png, rows->info);
    *out_reader = rows;
    return CPNG_OK;
}

int cpng_row_reader_row(cpng_row_reader *rows, unsigned char *row, char *message, size_t message_size) {
    if (rows == NULL || rows->failed || row == NULL) {
        shim_set_message(message, message_size, "the PNG reader failed before");
        return CPNG_ERR_ARGUMENT;
    }
    rows->error.message = message;
    rows->error.message_size = message_size;
    if (setjmp(png_jmpbuf(rows->png))) {
        rows->failed = 1;
        return rows->error.truncated ? CPNG_ERR_TRUNCATED : CPNG_ERR_LIBPNG;
    }
    png_read_row(rows->png, row, NULL);
    return CPNG_OK;
}
