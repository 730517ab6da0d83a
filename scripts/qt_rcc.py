"""Read the files inside a Qt binary resource file (``*.rcc``, magic ``qres``).

The format is Qt's own (``rcc -binary``); all integers are big-endian:

* header: ``b"qres"``, version (u32), tree offset (u32), data offset (u32), names offset (u32) and,
  from version 3 on, overall flags (u32);
* tree: fixed-size nodes (14 bytes; 22 from version 2, which adds a u64 modification time). Node 0 is
  the root. A node is ``name offset (u32), flags (u16)`` then either, for a directory (flag 2),
  ``child count (u32), index of the first child (u32)``, or, for a file, ``country (u16), language (u16),
  data offset (u32)``;
* names: ``length (u16), hash (u32)``, then ``length`` UTF-16BE code units;
* data: ``length (u32)`` then the bytes. With flag 1 the bytes are zlib data behind a 4-byte
  uncompressed length (``qCompress``); flag 4 is zstd, which this reader refuses by name.

Used by ``build_demo_data.py`` for the photos that GCompris keeps in its ``.rcc`` files.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

MAGIC = b"qres"
COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 0x1, 0x2, 0x4
MAX_ENTRY_BYTES = 256 * 1024 * 1024  # one decompressed file; a larger claim means a damaged file


class RccError(ValueError):
    """The bytes are not a readable Qt resource file."""


class RccFile:
    """The files of one ``.rcc`` resource, by their path inside it (``"a/b/c.webp"``)."""

    def __init__(self, data: bytes, name: str = "<bytes>"):
        self.data, self.name = data, name
        if len(data) < 20 or data[:4] != MAGIC:
            raise RccError(f"{name}: not a Qt resource file (no 'qres' header)")
        self.version, self.tree, self.data_off, self.names = struct.unpack_from(">IIII", data, 4)
        if self.version not in (1, 2, 3):
            raise RccError(f"{name}: unsupported rcc version {self.version}")
        self.node_size = 14 if self.version == 1 else 22
        for what, off in (("tree", self.tree), ("data", self.data_off), ("names", self.names)):
            if off >= len(data):
                raise RccError(f"{name}: {what} offset {off} lies past the end ({len(data)} bytes)")

    @classmethod
    def open(cls, path) -> "RccFile":
        return cls(Path(path).read_bytes(), str(path))

    def _u(self, fmt: str, off: int):
        try:
            return struct.unpack_from(fmt, self.data, off)
        except struct.error:
            raise RccError(f"{self.name}: truncated at byte {off}") from None

    def _node(self, index: int) -> tuple[str, int, int, int]:
        """(name, flags, a, b) of tree node ``index``; a, b = (child count, first child) or (0, data offset)."""
        off = self.tree + index * self.node_size
        name_off, flags = self._u(">IH", off)
        if flags & DIRECTORY:
            a, b = self._u(">II", off + 6)
        else:
            _country, _language, b = self._u(">HHI", off + 6)
            a = 0
        return self._name(name_off) if index else "", flags, a, b

    def _name(self, off: int) -> str:
        (length,) = self._u(">H", self.names + off)
        start = self.names + off + 6
        raw = self.data[start:start + 2 * length]
        if len(raw) != 2 * length:
            raise RccError(f"{self.name}: name at {off} runs past the end")
        return raw.decode("utf-16-be")

    def paths(self) -> dict[str, tuple[int, int]]:
        """Every file's path mapped to (flags, data offset); depth-first from the root."""
        out: dict[str, tuple[int, int]] = {}
        stack, seen = [(0, "")], set()
        while stack:
            index, prefix = stack.pop()
            if index in seen:
                raise RccError(f"{self.name}: the tree has a loop at node {index}")
            seen.add(index)
            name, flags, count, first = self._node(index)
            path = f"{prefix}/{name}" if prefix else name
            if flags & DIRECTORY:
                stack.extend((first + k, path) for k in range(count))
            else:
                out[path] = (flags, first)
        return out

    def read(self, path: str) -> bytes:
        """The (decompressed) bytes of the file at ``path``."""
        try:
            flags, off = self.paths()[path]
        except KeyError:
            raise KeyError(f"{self.name} has no file {path!r}") from None
        return self.payload(flags, off, path)

    def payload(self, flags: int, off: int, path: str) -> bytes:
        """The bytes of the file entry at data offset ``off`` with ``flags`` (as ``paths()`` gives them)."""
        (length,) = self._u(">I", self.data_off + off)
        body = self.data[self.data_off + off + 4:self.data_off + off + 4 + length]
        if len(body) != length:
            raise RccError(f"{self.name}: {path} runs past the end of the file")
        if flags & COMPRESSED_ZSTD:
            raise RccError(f"{self.name}: {path} is zstd-compressed, which this reader does not handle")
        if flags & COMPRESSED:
            (size,) = struct.unpack_from(">I", body, 0)
            if size > MAX_ENTRY_BYTES:
                raise RccError(f"{self.name}: {path} claims {size} bytes uncompressed")
            out = zlib.decompressobj().decompress(body[4:], size)
            if len(out) != size:
                raise RccError(f"{self.name}: {path} decompressed to {len(out)} bytes, not {size}")
            return out
        return body

    def items(self):
        """(path, bytes) of every file."""
        for path, (flags, off) in sorted(self.paths().items()):
            yield path, self.payload(flags, off, path)
