"""Tar packing and safe unpacking for upload_dir and download_dir (blocking: run in a thread)."""

from __future__ import annotations

import os
import posixpath
import tarfile
from typing import BinaryIO, List, Optional

from .errors import SlotqError


def pack_dir(local_dir: str, f: BinaryIO) -> int:
    """Writes a tar of the directory's contents (member names relative to it, as the TypeScript producer's
    packDirectory makes them) to ``f``: directories, regular files and symlinks with their modes and mtimes;
    sockets and devices left out, owners dropped (the exec user owns what is unpacked). Returns its size."""

    def clean(ti: tarfile.TarInfo) -> Optional[tarfile.TarInfo]:
        if not (ti.isdir() or ti.isfile() or ti.issym()):
            return None
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(local_dir):
            dirs.sort()
            rel_root = os.path.relpath(root, local_dir)
            for name in dirs + sorted(files):
                abs_path = os.path.join(root, name)
                rel = name if rel_root == "." else f"{rel_root}/{name}".replace(os.sep, "/")
                tar.add(abs_path, arcname=rel, recursive=False, filter=clean)
    size = f.tell()
    f.flush()
    return size


def extract_into(f: BinaryIO, container_path: str, local_dir: str) -> List[str]:
    """Unpacks a download's tar (members named from the basename of ``container_path``, as docker cp
    makes them) so that a directory's contents land in ``local_dir`` and a file as ``local_dir/<name>``.
    Uses tarfile's 'data' filter where this Python has it (3.12, and 3.8.17+/3.9.17+/3.10.12+/3.11.4+),
    else checks each member by hand: no absolute names, no '..', no link pointing out, no devices."""
    os.makedirs(local_dir, exist_ok=True)
    dest = os.path.realpath(local_dir)
    base = posixpath.basename(container_path.rstrip("/"))
    written: List[str] = []
    with tarfile.open(fileobj=f, mode="r:") as tar:
        members = tar.getmembers()
        for m in members:
            m.name = m.name[2:] if m.name.startswith("./") else m.name
        is_dir = any(m.name.rstrip("/") == base and m.isdir() for m in members) if base else True
        keep: List[tarfile.TarInfo] = []
        for m in members:
            name = m.name.rstrip("/")
            if is_dir and base:
                if name == base:
                    continue  # the directory itself is local_dir
                if not name.startswith(base + "/"):
                    raise _unsafe(m, "is not under the downloaded directory")
                name = name[len(base) + 1 :]
            if not name:
                continue
            m.name = name
            if not hasattr(tarfile, "data_filter"):
                _check_member(m, dest)
            keep.append(m)
            written.append(os.path.join(dest, name))
        if hasattr(tarfile, "data_filter"):
            try:
                tar.extractall(dest, members=keep, filter="data")  # type: ignore[call-arg]
            except tarfile.FilterError as e:  # type: ignore[attr-defined]
                raise SlotqError("INVALID_ARGS", f"download: unsafe archive member refused: {e}", retryable=False) from None
        else:
            tar.extractall(dest, members=keep)
    return written


def _check_member(m: tarfile.TarInfo, dest: str) -> None:
    if not (m.isdir() or m.isfile() or m.issym() or m.islnk()):
        raise _unsafe(m, "is not a file, directory or link")
    if m.name.startswith("/") or os.path.isabs(m.name):
        raise _unsafe(m, "is absolute")
    target = os.path.realpath(os.path.join(dest, m.name))
    if not _inside(target, dest):
        raise _unsafe(m, "lands outside the destination")
    if m.issym() or m.islnk():
        link_base = os.path.dirname(target) if m.issym() else dest
        if os.path.isabs(m.linkname) or not _inside(os.path.realpath(os.path.join(link_base, m.linkname)), dest):
            raise _unsafe(m, f"links outside the destination ({m.linkname})")
    m.mode &= 0o777  # no setuid, setgid or sticky bits


def _inside(path: str, dest: str) -> bool:
    return path == dest or path.startswith(dest.rstrip(os.sep) + os.sep)


def _unsafe(m: tarfile.TarInfo, why: str) -> SlotqError:
    return SlotqError("INVALID_ARGS", f"download: archive member {m.name!r} {why}: refused", retryable=False)
