"""The Qt resource (.rcc) reader used to take GCompris' photos out of its resource files."""
from __future__ import annotations

import importlib.util
import struct
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("qt_rcc", ROOT / "scripts" / "qt_rcc.py")
qt_rcc = importlib.util.module_from_spec(spec)
sys.modules["qt_rcc"] = qt_rcc
spec.loader.exec_module(qt_rcc)


def write_rcc(tree: dict, version: int = 3) -> bytes:
    """A literal rcc encoder for tests: ``tree`` maps names to bytes (a file), (bytes, "z") (compressed) or a dict."""
    names, data, nodes = bytearray(), bytearray(), []
    name_at: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_at:
            name_at[name] = len(names)
            encoded = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), 0) + encoded)
        return name_at[name]

    # breadth-first: the children of one directory are consecutive nodes, as Qt writes them
    nodes.append(["", 0x2, tree])
    i = 0
    while i < len(nodes):
        name, flags, payload = nodes[i]
        if flags & 0x2:
            first = len(nodes)
            for child, value in sorted(payload.items()):
                if isinstance(value, dict):
                    nodes.append([child, 0x2, value])
                elif isinstance(value, tuple):
                    nodes.append([child, 0x1, value[0]])
                else:
                    nodes.append([child, 0x0, value])
            nodes[i].append((len(payload), first))
        i += 1
    tree_bytes = bytearray()
    for index, node in enumerate(nodes):
        name, flags, payload = node[:3]
        off = name_offset(name) if index else 0
        if flags & 0x2:
            count, first = node[3]
            tree_bytes += struct.pack(">IHII", off, flags, count, first)
        else:
            body = struct.pack(">I", len(payload)) + zlib.compress(payload) if flags & 0x1 else payload
            tree_bytes += struct.pack(">IHHHI", off, flags, 0, 0, len(data))
            data.extend(struct.pack(">I", len(body)) + body)
        if version >= 2:
            tree_bytes += struct.pack(">Q", 0)
    header_len = 24 if version >= 3 else 20
    tree_off = header_len
    data_off = tree_off + len(tree_bytes)
    names_off = data_off + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    return bytes(header + tree_bytes + data + names)


TREE = {"gcompris": {"src": {"erase": {"kitten.webp": b"\x01kitten bytes", "big.webp": (b"zz" * 5000, "z")},
                            "ActivityInfo.qml": b"Item {}"}}}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_reads_every_file_by_path_plain_and_compressed(version):
    rcc = qt_rcc.RccFile(write_rcc(TREE, version))
    assert set(rcc.paths()) == {"gcompris/src/erase/kitten.webp", "gcompris/src/erase/big.webp",
                                "gcompris/src/ActivityInfo.qml"}
    assert rcc.read("gcompris/src/erase/kitten.webp") == b"\x01kitten bytes"
    assert rcc.read("gcompris/src/erase/big.webp") == b"zz" * 5000
    assert dict(rcc.items())["gcompris/src/ActivityInfo.qml"] == b"Item {}"


def test_non_rcc_and_damaged_files_are_clear_errors():
    with pytest.raises(qt_rcc.RccError, match="not a Qt resource"):
        qt_rcc.RccFile(b"PK\x03\x04 a zip file, not an rcc")
    good = write_rcc(TREE)
    with pytest.raises(qt_rcc.RccError, match="past the end|truncated"):
        qt_rcc.RccFile(good[:40]).paths()
    with pytest.raises(KeyError, match="no file"):
        qt_rcc.RccFile(good).read("missing.webp")


def test_a_lying_size_header_cannot_exhaust_memory():
    blob = bytearray(write_rcc({"a.bin": (b"x" * 100, "z")}))
    rcc = qt_rcc.RccFile(bytes(blob))
    flags, off = rcc.paths()["a.bin"]
    start = rcc.data_off + off + 4  # the 4-byte uncompressed length inside the entry
    blob[start:start + 4] = struct.pack(">I", 2**31)
    with pytest.raises(qt_rcc.RccError, match="claims"):
        qt_rcc.RccFile(bytes(blob)).read("a.bin")


def test_zstd_entries_are_refused_by_name():
    blob = bytearray(write_rcc({"a.bin": b"abc"}))
    rcc = qt_rcc.RccFile(bytes(blob))
    node = rcc.tree + rcc.node_size  # the only file node, right after the root
    blob[node + 4:node + 6] = struct.pack(">H", 0x4)
    with pytest.raises(qt_rcc.RccError, match="zstd"):
        qt_rcc.RccFile(bytes(blob)).read("a.bin")
