#!/usr/bin/env python3
"""Writes the demo's sample media into media/ (the master's library in the
local setup): two SVG adverts and a small PNG drawn pixel by pixel. No
downloaded assets; run it again to regenerate the same bytes."""
import pathlib
import struct
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "media" / "ads"

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="1280" height="720" viewBox="0 0 1280 720">
  <rect width="1280" height="720" fill="{bg}"/>
  <circle cx="1080" cy="160" r="220" fill="{accent}" opacity="0.35"/>
  <text x="80" y="340" font-family="sans-serif" font-size="96" fill="#ffffff">{title}</text>
  <text x="80" y="440" font-family="sans-serif" font-size="44" fill="#ffffff" opacity="0.85">{line}</text>
</svg>
"""


def png(width, height):
    rows = b""
    for y in range(height):
        rows += b"\x00" + b"".join(
            bytes((40 + 180 * x // width, 90 + 120 * y // height, 160)) for x in range(width)
        )

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def main():
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT / "welcome.svg").write_text(SVG.format(
        bg="#1d3557", accent="#e63946", title="Welcome", line="Take a ticket, we will call you."))
    (ROOT / "savings.svg").write_text(SVG.format(
        bg="#2a9d8f", accent="#e9c46a", title="Spring savings", line="Ask at counter 3 about our new account."))
    (ROOT / "gradient.png").write_bytes(png(160, 90))


if __name__ == "__main__":
    main()
