"""A small line chart as a PNG, with nothing but zlib: a product's last 30 days of quotes, inline in
a digest email (mail clients show PNG; many do not show SVG)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from itertools import pairwise

#: Pixels.
WIDTH, HEIGHT = 160, 40
LINE = (31, 94, 168)
BACKGROUND = (255, 255, 255)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def sparkline(points: Sequence[tuple[float, float]], width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """PNG bytes of (time, price) points drawn as a line; a flat line for one point or none."""
    pixels = [[BACKGROUND] * width for _ in range(height)]
    if points:
        ts = [t for t, _ in points]
        ps = [p for _, p in points]
        t0, t1 = min(ts), max(ts) or 1.0
        p0, p1 = min(ps), max(ps)
        coords = []
        for t, p in points:
            x = 1 + int((t - t0) / ((t1 - t0) or 1) * (width - 3))
            y = height // 2 if p1 == p0 else height - 2 - int((p - p0) / (p1 - p0) * (height - 4))
            coords.append((x, y))
        if len(coords) == 1:
            coords.append((width - 2, coords[0][1]))
        for (xa, ya), (xb, yb) in pairwise(coords):
            steps = max(abs(xb - xa), abs(yb - ya), 1)
            for i in range(steps + 1):
                x, y = xa + (xb - xa) * i // steps, ya + (yb - ya) * i // steps
                for dy in (0, 1):
                    if 0 <= y + dy < height:
                        pixels[y + dy][x] = LINE
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + \
        _chunk(b"IEND", b"")
