#!/usr/bin/env python3
"""Writes the sample JPEGs and the non-image file in sample-images/ (deterministic).

Pixels come from their coordinates (as in make-sample-images.py); cjpeg (apt: libjpeg-turbo-progs)
encodes them: baseline colour, progressive colour, grayscale, and a colour photo whose EXIF orientation
(6: turn 90 degrees clockwise to view) is set in an APP1 segment. document.pdf is a small valid PDF.
Run from the repository root:  python3 scripts/make-sample-files.py
"""
import os
import struct
import subprocess

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sample-images")
W, H = 320, 240


def ppm():
    rows = bytearray()
    for y in range(H):
        for x in range(W):
            band = 60 if (y // 30) % 2 else 0
            rows += bytes(((x * 255 // (W - 1)) ^ band, (y * 255 // (H - 1)), ((x + y) * 3) % 256))
    return b"P6\n%d %d\n255\n" % (W, H) + bytes(rows)


def cjpeg(arguments, name):
    data = subprocess.run(["cjpeg", *arguments], input=ppm(), capture_output=True, check=True).stdout
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(with_exif(data) if name.startswith("photo-exif") else data)


def with_exif(jpeg, orientation=6):
    """Inserts an APP1 Exif segment (little-endian TIFF, IFD0 with one Orientation entry) after SOI."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    body = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def pdf():
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R >>",
    ]
    text = b"BT /F1 12 Tf 20 50 Td (Distri sample) Tj ET"
    objects.append(b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


cjpeg(["-quality", "85"], "photo-baseline.jpg")
cjpeg(["-quality", "85", "-progressive"], "photo-progressive.jpg")
cjpeg(["-quality", "85", "-grayscale"], "gray.jpg")
cjpeg(["-quality", "85"], "photo-exif-rotated.jpg")
with open(os.path.join(OUT, "document.pdf"), "wb") as f:
    f.write(pdf())
