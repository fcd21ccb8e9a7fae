"""Checking a checkpoint file's content against the checksums inside it before it is loaded.

``torch.save`` writes a zip archive whose every record (the pickle, each tensor's storage) carries
the CRC-32 of its bytes; ``torch.load`` does not check them, so a flipped bit in a tensor loads as a
silently different weight. :func:`verify_checksums` reads every record and compares, which costs
about as much as reading the file (the tensors' bytes are hashed straight from a memory map). Files
without checksums load unchecked: the legacy (non-zip) format, and archives written with
``torch.utils.serialization.config.save.compute_crc32 = False`` (all CRCs zero).
"""

from __future__ import annotations

import mmap
import os
import struct
import zipfile
import zlib
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from lit_dl.errors import CorruptCheckpointError

__all__ = ["verify_checksums"]

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


def verify_checksums(path: str | os.PathLike[str]) -> None:
    """Raise :class:`CorruptCheckpointError` if a record of the torch file ``path`` (local or an fsspec
    URL) does not match its CRC-32; return quietly for a file without checksums or that is no zip
    archive (a legacy pickle, a file that is not a checkpoint: loading it reports that)."""
    fs, target = fsspec.core.url_to_fs(str(path))
    if isinstance(fs, LocalFileSystem):
        try:
            with open(target, "rb") as f:
                _verify_local(f, str(path))
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            return  # the load names what is wrong with the file
        return
    with fs.open(target, "rb") as f:
        _verify_archive(f, str(path))


def _verify_local(f: Any, name: str) -> None:
    size = os.fstat(f.fileno()).st_size
    if size == 0 or not zipfile.is_zipfile(f):
        return
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as data:
        try:
            infos = zipfile.ZipFile(f).infolist()
        except zipfile.BadZipFile:
            return  # a damaged directory: the load reports the file as corrupt
        if not _has_checksums(infos):
            return
        for info in infos:
            start = _data_start(data, info)
            if start is None or info.compress_type != zipfile.ZIP_STORED:
                f.seek(0)
                _verify_archive(f, name)  # anything unusual: zipfile's own reader checks it
                return
            with data[start : start + info.compress_size] as record:
                intact = len(record) == info.compress_size and zlib.crc32(record) == info.CRC
            if not intact:
                raise _corrupt(name, info.filename)


def _data_start(data: memoryview, info: zipfile.ZipInfo) -> int | None:
    header = bytes(data[info.header_offset : info.header_offset + _LOCAL_HEADER.size])
    if len(header) != _LOCAL_HEADER.size:
        return None
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if signature != _LOCAL_HEADER_SIGNATURE:
        return None
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _verify_archive(f: Any, name: str) -> None:
    try:
        archive = zipfile.ZipFile(f)
    except zipfile.BadZipFile:
        return
    with archive:
        infos = archive.infolist()
        if not _has_checksums(infos):
            return
        for info in infos:
            try:
                with archive.open(info) as member:
                    while member.read(1 << 22):
                        pass
            except (zipfile.BadZipFile, EOFError):
                raise _corrupt(name, info.filename) from None


def _has_checksums(infos: list[zipfile.ZipInfo]) -> bool:
    # compute_crc32=False writes 0 for every record; a real CRC of a non-empty record is 0 one time in 2**32
    return any(info.CRC != 0 for info in infos if info.file_size > 0)


def _corrupt(name: str, record: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"checkpoint {name!r} is corrupt: its record {record.split('/', 1)[-1]!r} does not match the CRC-32 "
        "written with it (a flipped bit or a damaged copy); use another checkpoint or copy this one again "
        "from its source"
    )
