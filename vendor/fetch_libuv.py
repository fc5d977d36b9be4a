"""Place libuv's pinned source tree under vendor/libuv/.

The source comes from a package registry (PyPI, through pip), never from a git host:
uvloop's sdist carries libuv unmodified under ``vendor/libuv/``. The sdist is verified
against the sha256 pinned in ``vendor/libuv.lock`` before anything is extracted, and the
extracted tree is checked to be the pinned libuv version.

Usage:
    python vendor/fetch_libuv.py                   fetch if missing (idempotent, fast when done)
    python vendor/fetch_libuv.py --update-checksum print the sha256 of the carrier to pin it
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK = os.path.join(HERE, "libuv.lock")
DEST = os.path.join(HERE, "libuv")
CACHE = os.path.join(HERE, "cache")
STAMP = os.path.join(DEST, ".uvcffi-stamp")


def read_lock() -> dict[str, str]:
    values = {}
    with open(LOCK) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_version(root: str) -> str | None:
    header = os.path.join(root, "include", "uv", "version.h")
    try:
        text = open(header).read()
    except OSError:
        return None
    parts = [re.search(rf"#define UV_VERSION_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR", "PATCH")]
    if not all(parts):
        return None
    return ".".join(m.group(1) for m in parts)  # type: ignore[union-attr]


def download(lock: dict[str, str]) -> str:
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, lock["CARRIER_FILE"])
    if not os.path.exists(path):
        name = lock["CARRIER"].split("==")[0]
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--no-binary", name, "-d", CACHE, lock["CARRIER"]]
        print("fetch_libuv: " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True)
    return path


def fetch(update_checksum: bool = False) -> int:
    lock = read_lock()
    want = lock["LIBUV_VERSION"]
    if not update_checksum and os.path.exists(STAMP) and open(STAMP).read().strip() == lock["CARRIER_SHA256"]:
        return 0
    path = download(lock)
    got = sha256(path)
    if update_checksum:
        print(f"CARRIER_SHA256={got}")
        return 0
    if got != lock["CARRIER_SHA256"]:
        os.unlink(path)
        sys.exit(f"fetch_libuv: checksum mismatch for {lock['CARRIER_FILE']}: got {got}, "
                 f"vendor/libuv.lock pins {lock['CARRIER_SHA256']}. The corrupt download was removed; "
                 f"run `python vendor/fetch_libuv.py` again.")
    prefix = lock["CARRIER_FILE"][: -len(".tar.gz")] + "/vendor/libuv/"
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        with tarfile.open(path) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix) and
                       "/.git" not in m.name[len(prefix) - 1:] and (m.isfile() or m.isdir())]
            for m in members:
                m.name = m.name[len(prefix):]
            tar.extractall(tmp, members=[m for m in members if m.name])
        version = tree_version(tmp)
        if version != want:
            sys.exit(f"fetch_libuv: {lock['CARRIER']} carries libuv {version}, vendor/libuv.lock pins {want}")
        if os.path.exists(DEST):
            shutil.rmtree(DEST)
        os.rename(tmp, DEST)
        os.makedirs(tmp)  # TemporaryDirectory wants to remove something
    with open(STAMP, "w") as f:
        f.write(lock["CARRIER_SHA256"] + "\n")
    print(f"fetch_libuv: libuv {want} placed in vendor/libuv/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(fetch("--update-checksum" in sys.argv[1:]))
