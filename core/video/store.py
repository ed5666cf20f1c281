"""The LMDB volume store: one key per stack, value = small JSON header + raw array bytes.

Value layout (``FORMAT_VERSION`` 1)::

    b"STVS" | header length (uint32, little-endian) | JSON header, space-padded | volume bytes | mask bytes

The header holds ``version``, ``dtype``, ``shape``, ``mask_dtype``, ``mask_shape`` (``null`` when
there is no mask) and ``meta`` (ROI box, frame size, frame count, ...). The padding puts the array
bytes at a 16-byte boundary of the value. Nothing is pickled: any LMDB reader in any language can
read a value, and a crafted store cannot run code.

Reads are zero-copy: :meth:`VolumeStore.get` returns read-only ``np.frombuffer`` views into
LMDB's memory map. They stay valid while the store is open because

* the store is append-only (``put`` never replaces or deletes a value), and LMDB only frees the
  overflow pages that hold a large value when that value is replaced or deleted; values small
  enough to share a B-tree page (under ``INLINE_LIMIT`` bytes) are copied instead;
* a reader reserves ``reader_map_size`` of address space (1 TiB by default, no memory is used), so
  a writer growing the file in another process never forces the reader to re-map.

Concurrency: one writer at a time (LMDB's lock), any number of reader processes. The environment
is opened lazily in each process (checked with ``os.getpid()``), so a store object created before
``fork`` (e.g. in a PyTorch ``Dataset`` handed to ``DataLoader`` workers) opens its own handle in
each worker. LMDB forbids opening one environment twice in a process, so store objects of one
process share one handle per directory (a reader may use a writer's handle). Readers keep LMDB's reader lock (``lock=True``): without it a concurrent ingest could
recycle B-tree pages under a reader's feet.

Writes are transactional: :meth:`VolumeStore.put_many` commits its whole batch in one LMDB
transaction, so a killed writer leaves either all of the batch or none of it. The map grows by
itself: on ``MapFullError`` the batch is aborted, the map doubled and the batch retried.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import lmdb
import numpy as np

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAGIC = b"STVS"
INLINE_LIMIT = 2048
MAX_KEY_BYTES = 511
_ALIGN = 16


@dataclass
class _Shared:
    """One process's open environment for a store directory, shared by its store objects."""

    env: lmdb.Environment
    writable: bool
    pid: int
    users: int = 0


_OPEN: dict[Path, _Shared] = {}


class StoreError(RuntimeError):
    """The store cannot be opened, written or read; the message names the path and the problem."""


def key_for(filename: str | os.PathLike) -> str:
    """The store key of a stack file: its filename stem (``"a/100109.mp4"`` → ``"100109"``)."""
    key = Path(filename).stem
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"{filename}: cannot be a store key (empty or over {MAX_KEY_BYTES} bytes)")
    return key


@dataclass(frozen=True)
class StoredStack:
    """One stored stack: ``volume`` (e.g. ``uint8 (D, H, W)``), optional ``mask`` and ``meta``."""

    volume: np.ndarray
    mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


def encode(stack: StoredStack) -> bytes:
    """Serialise a stack into the value layout described in the module docstring."""
    volume = np.ascontiguousarray(stack.volume)
    mask = None if stack.mask is None else np.ascontiguousarray(stack.mask)
    header = {"version": FORMAT_VERSION, "dtype": volume.dtype.str, "shape": list(volume.shape),
              "mask_dtype": None if mask is None else mask.dtype.str,
              "mask_shape": None if mask is None else list(mask.shape), "meta": stack.meta}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(MAGIC) + 4 + len(text)) % _ALIGN)
    parts = [MAGIC, len(text).to_bytes(4, "little"), text, volume.tobytes()]
    if mask is not None:
        parts.append(mask.tobytes())
    return b"".join(parts)


def decode(value: bytes | memoryview, *, where: str = "value") -> StoredStack:
    """Read a value back as views on ``value`` (no copy); raises :class:`StoreError` if malformed."""
    buf = memoryview(value)
    if bytes(buf[:4]) != MAGIC:
        raise StoreError(f"{where}: not a volume store value (bad magic)")
    size = int.from_bytes(buf[4:8], "little")
    header = json.loads(bytes(buf[8:8 + size]))
    if header.get("version") != FORMAT_VERSION:
        raise StoreError(f"{where}: unsupported format version {header.get('version')}")
    offset = 8 + size
    dtype = np.dtype(header["dtype"])
    count = int(np.prod(header["shape"], dtype=np.int64))
    end = offset + count * dtype.itemsize
    mask = None
    if header["mask_shape"] is not None:
        mask_dtype = np.dtype(header["mask_dtype"])
        mask_count = int(np.prod(header["mask_shape"], dtype=np.int64))
        mask_end = end + mask_count * mask_dtype.itemsize
        if mask_end != len(buf):
            raise StoreError(f"{where}: {len(buf)} bytes, header says {mask_end}")
        mask = np.frombuffer(buf, mask_dtype, mask_count, end).reshape(header["mask_shape"])
    elif end != len(buf):
        raise StoreError(f"{where}: {len(buf)} bytes, header says {end}")
    volume = np.frombuffer(buf, dtype, count, offset).reshape(header["shape"])
    return StoredStack(volume=volume, mask=mask, meta=header["meta"])


def _disk_note(path: Path, needed: int) -> str:
    """``"; the disk is full ..."`` when ``path``'s file system has no room for ``needed`` more bytes.

    LMDB reports a full disk as whatever its last write returned (often "Input/output error"),
    so the free space is checked to say what happened.
    """
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return ""
    return f"; the disk is full ({free} bytes free, the batch needs {needed})" if free < 2 * needed else ""


def _open_env(path: Path, *, readonly: bool, map_size: int, reader_map_size: int) -> lmdb.Environment:
    try:
        if readonly:
            data = path / "data.mdb"
            if not data.is_file():
                raise StoreError(f"{path}: no volume store here")
            return lmdb.open(str(path), readonly=True, create=False, readahead=False, max_readers=1024,
                             map_size=max(reader_map_size, data.stat().st_size))
        path.mkdir(parents=True, exist_ok=True)
        data = path / "data.mdb"
        size = max(map_size, 2 * data.stat().st_size if data.exists() else 0)
        return lmdb.open(str(path), map_size=size, readahead=False, max_readers=1024)
    except (lmdb.Error, OSError) as err:
        raise StoreError(f"{path}: cannot open the volume store for {'reading' if readonly else 'writing'}: "
                         f"{err}") from err


def _acquire(path: Path, *, readonly: bool, map_size: int, reader_map_size: int) -> lmdb.Environment:
    """This process's environment for ``path``, opened once and shared (LMDB forbids two)."""
    where = path.resolve()
    shared = _OPEN.get(where)
    if shared is not None and shared.pid != os.getpid():
        # Inherited through fork: close it before opening our own. The child holds none of the
        # parent's fcntl locks, so this releases nothing of the parent's.
        shared.env.close()
        del _OPEN[where]
        shared = None
    if shared is not None and not readonly and not shared.writable:
        raise StoreError(f"{path}: already open read-only in this process; close it before writing")
    if shared is None:
        env = _open_env(path, readonly=readonly, map_size=map_size, reader_map_size=reader_map_size)
        shared = _OPEN[where] = _Shared(env, writable=not readonly, pid=os.getpid())
    shared.users += 1
    return shared.env


def _release(path: Path) -> None:
    where = path.resolve()
    shared = _OPEN.get(where)
    if shared is not None and shared.pid == os.getpid():
        shared.users -= 1
        if shared.users <= 0:
            shared.env.close()
            del _OPEN[where]


class VolumeStore:
    """A directory holding an LMDB environment of stacks (see the module docstring).

    Parameters
    ----------
    path
        The store directory (created by a writer if missing).
    readonly
        Open for reading only; the store must exist.
    map_size
        Initial map size of a writer in bytes; it doubles whenever a batch does not fit.
    reader_map_size
        Address space a reader reserves, so a growing store never forces it to re-map.
    """

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False, map_size: int = 1 << 30,
                 reader_map_size: int = 1 << 40) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.map_size = map_size
        self.reader_map_size = reader_map_size
        self._env: lmdb.Environment | None = None
        self._pid: int | None = None
        self._open()

    def __getstate__(self) -> dict:
        return {"path": self.path, "readonly": self.readonly, "map_size": self.map_size,
                "reader_map_size": self.reader_map_size}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _env=None, _pid=None)

    def __enter__(self) -> VolumeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VolumeStore({str(self.path)!r}, readonly={self.readonly})"

    def _open(self) -> lmdb.Environment:
        """The environment of this process, opened on first use after start or fork."""
        if self._env is not None and self._pid == os.getpid():
            return self._env
        self._env = _acquire(self.path, readonly=self.readonly, map_size=self.map_size,
                             reader_map_size=self.reader_map_size)
        self._pid = os.getpid()
        return self._env

    def _read(self) -> lmdb.Transaction:
        env = self._open()
        try:
            return env.begin(buffers=True)
        except lmdb.MapResizedError:
            env.set_mapsize(0)
            return env.begin(buffers=True)

    def close(self) -> None:
        """Release this process's handle (a later call reopens it)."""
        if self._env is not None and self._pid == os.getpid():
            _release(self.path)
        self._env = None

    def __contains__(self, key: str) -> bool:
        with self._read() as txn:
            return txn.get(key.encode()) is not None

    def __len__(self) -> int:
        with self._read() as txn:
            return txn.stat()["entries"]

    def keys(self) -> list[str]:
        """All keys, sorted."""
        with self._read() as txn:
            return [bytes(k).decode() for k in txn.cursor().iternext(keys=True, values=False)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def get(self, key: str) -> StoredStack:
        """The stack stored under ``key`` as read-only zero-copy views; ``KeyError`` if absent."""
        with self._read() as txn:
            value = txn.get(key.encode())
            if value is None:
                raise KeyError(f"{key!r} is not in the volume store {self.path}")
            if len(value) < INLINE_LIMIT:
                value = bytes(value)
        return decode(value, where=f"{self.path}[{key!r}]")

    def put(self, key: str, volume: np.ndarray, *, mask: np.ndarray | None = None,
            meta: dict | None = None) -> bool:
        """Store one stack; returns False (and changes nothing) if ``key`` is already stored."""
        return bool(self.put_many([(key, StoredStack(volume, mask, meta or {}))]))

    def put_many(self, items: Iterable[tuple[str, StoredStack]]) -> list[str]:
        """Store a batch in one transaction (all or nothing); returns the keys newly written.

        Keys already stored are skipped (the store is append-only). The map doubles and the
        batch is retried when it does not fit.
        """
        if self.readonly:
            raise StoreError(f"{self.path}: the volume store is open read-only")
        values = [(key.encode(), encode(stack)) for key, stack in items]
        env = self._open()
        while True:
            try:
                with env.begin(write=True) as txn:
                    return [key.decode() for key, value in values if txn.put(key, value, overwrite=False)]
            except lmdb.MapFullError:
                size = env.info()["map_size"] * 2
                log.info("%s: growing the map to %d bytes", self.path, size)
                env.set_mapsize(size)
            except lmdb.Error as err:
                needed = sum(len(value) for _, value in values)
                raise StoreError(f"{self.path}: cannot write to the volume store: {err}"
                                 f"{_disk_note(self.path, needed)}") from err
