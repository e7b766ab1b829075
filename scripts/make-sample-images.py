#!/usr/bin/env python3
"""Writes the sample PNGs in sample-images/ (pure Python: zlib + struct, deterministic).

Every image is computed from its pixel coordinates, so tests can recompute expected pixel values.
Run from the repository root:  python3 scripts/make-sample-images.py
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sample-images")

# PNG color types
GRAY, RGB, PALETTE, GRAY_ALPHA, RGBA = 0, 2, 3, 4, 6
CHANNELS = {GRAY: 1, RGB: 3, PALETTE: 1, GRAY_ALPHA: 2, RGBA: 4}


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """Packs one row of samples (ints) at the given bit depth into bytes."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out = bytearray()
    per_byte = 8 // depth
    for i in range(0, len(samples), per_byte):
        byte = 0
        group = samples[i:i + per_byte]
        for j in range(per_byte):
            value = group[j] if j < len(group) else 0
            byte |= value << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, row, prior, bpp):
    out = bytearray([kind])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i] if prior is not None else 0
        c = prior[i - bpp] if (prior is not None and i >= bpp) else 0
        predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - predictor) & 0xFF)
    return bytes(out)


def scanlines(pixel_rows, depth, color_type, filters):
    """Filtered scanlines for rows of pixels (each pixel a tuple of samples)."""
    bpp = max(1, CHANNELS[color_type] * depth // 8)
    data = bytearray()
    prior = None
    for y, pixels in enumerate(pixel_rows):
        row = pack_row([s for p in pixels for s in p], depth)
        data += filter_row(filters[y % len(filters)], row, prior, bpp)
        prior = row
    return bytes(data)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(name, width, height, depth, color_type, pixel, filters=(0,), interlace=False, extra=()):
    """`pixel(x, y)` returns a tuple of samples. `extra` is a list of (kind, data) chunks before IDAT."""
    if interlace:
        raw = bytearray()
        for x0, y0, dx, dy in ADAM7:
            xs = list(range(x0, width, dx))
            ys = list(range(y0, height, dy))
            if not xs or not ys:
                continue
            raw += scanlines([[pixel(x, y) for x in xs] for y in ys], depth, color_type, filters)
    else:
        raw = scanlines([[pixel(x, y) for x in range(width)] for y in range(height)], depth, color_type, filters)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlace else 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    for kind, data in extra:
        png += chunk(kind, data)
    png += chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(png)
    print(f"{name}: {width}x{height}, {len(png)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    write_png("gray8.png", 64, 48, 8, GRAY, lambda x, y: ((x * 4 + y * 2) & 255,), filters=(0, 1, 2, 3, 4))
    write_png("gray1.png", 96, 64, 1, GRAY, lambda x, y: (((x // 8) + (y // 8)) & 1,))
    write_png("gray4.png", 80, 60, 4, GRAY, lambda x, y: ((x + y) % 16,))
    write_png("gray-alpha8.png", 64, 64, 8, GRAY_ALPHA, lambda x, y: ((x * 4) & 255, (y * 4) & 255), filters=(1, 4))
    write_png("rgb8.png", 128, 96, 8, RGB, lambda x, y: ((x * 2) & 255, (y * 2) & 255, (x + y) & 255),
              filters=(0, 1, 2, 3, 4))
    write_png("rgb16.png", 64, 48, 16, RGB, lambda x, y: ((x * 1000) & 0xFFFF, (y * 1300) & 0xFFFF, 0xABCD),
              filters=(2,))
    write_png("rgba8.png", 100, 75, 8, RGBA,
              lambda x, y: ((x * 2) & 255, (y * 3) & 255, 128, ((x + y) * 2) & 255), filters=(4,))
    palette = bytes(c for i in range(16) for c in ((i * 16) & 255, (255 - i * 16) & 255, (i * 40) & 255))
    trns = bytes([0, 64, 128, 192])
    write_png("palette4-trns.png", 72, 54, 4, PALETTE, lambda x, y: ((x // 9 + (y // 9) * 8) % 16,),
              extra=[(b"PLTE", palette), (b"tRNS", trns)])
    write_png("interlaced-rgb8.png", 65, 47, 8, RGB, lambda x, y: ((x * 3) & 255, (y * 5) & 255, (x * y) & 255),
              filters=(0, 1, 4), interlace=True)


if __name__ == "__main__":
    main()
