"""Atomic writes, up-front checks of output folders, and removal of stale temporaries.

Every file a long job produces is written under a temporary name in the same folder and renamed
into place, so a crash never leaves a half-written file under the final name. What a crash does
leave is the temporary (`.{name}.XXXXXXXX.tmp`); `remove_stale_temporaries` clears those at the
next start without touching one that a live process is still writing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from dqn.errors import UserError

# A temporary of atomic_write: "." + target name + "." + mkstemp's random part + ".tmp".
# mkstemp draws the random part from [a-z0-9_].
TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]+\.tmp$")
# A temporary is stale once its last write is this old. No write in this project pauses this
# long between two writes to its temporary (an fsync of a large file takes minutes at most), and
# the lock test below covers a live writer that does; an hour also absorbs the clock skew
# between a compute node and a network file server that stamps the modification time.
STALE_TEMPORARY_AGE_SECONDS = 3600.0


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)`, fsync the result and rename it to `path`.

    The temporary is held under an exclusive flock from its creation until it is renamed or
    removed, which tells `remove_stale_temporaries` in any process that its writer is alive.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp_path = Path(tmp)
    try:
        try:
            try_flock(fd, fcntl.LOCK_EX)
            # mkstemp creates 0600; results are shared files, so give them the umask's usual mode.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
            write(tmp_path)
            with open(tmp_path, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp_path, path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
    finally:
        os.close(fd)  # releases the lock, after the rename: the temporary name is gone by then
    return path


def try_flock(fd: int | IO, operation: int) -> bool:
    """flock `fd` (a file descriptor or an open file); False where the file system has no flock
    (some network mounts: ENOLCK), which is no error: the caller goes on without the lock. The
    one lock call of the project; a held lock under LOCK_NB still raises BlockingIOError."""
    try:
        fcntl.flock(fd, operation)
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return False
        raise
    return True


def write_parquet(df, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame to Parquet atomically (no index)."""
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")

    return atomic_write(path, write)


class _OSErrorRecorder:
    """A write-only file wrapper that keeps the OSError of a failed write: torch.save turns it
    into a RuntimeError ("unexpected pos ..."), which would hide a full disk."""

    def __init__(self, f):
        self._f = f
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._f.flush()


def torch_save(obj: Any, f) -> None:
    """torch.save into the open binary file `f`; a write that fails raises its own OSError (ENOSPC
    stays ENOSPC)."""
    import torch

    recorder = _OSErrorRecorder(f)
    try:
        torch.save(obj, recorder)
    except RuntimeError:
        error, recorder.error, recorder._f = recorder.error, None, None
        if error is None:
            raise
        # A new exception, and a recorder that no longer reaches it: torch's writer, which keeps
        # the recorder after a failed write, would otherwise keep this traceback's frames (the
        # caller's emulator and learner among them) alive to the interpreter's shutdown.
        raise OSError(error.errno, error.strerror, getattr(f, "name", None)) from None


def write_torch(obj: Any, path: str | os.PathLike) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch_save(obj, f)

    return atomic_write(path, write)


# ---------------------------------------------------------------------------- output folders
def check_output_dir(path: str | os.PathLike, *, min_free_bytes: int = 0, created: list[Path] | None = None) -> Path:
    """Create `path` if needed and fail with one line if it is not writable or the disk is full.

    A failed check removes again the folders this call created (if still empty), so a refused
    command leaves nothing behind. The folders it created are appended to `created`, parents
    first, so that a caller whose later work fails can remove them with `remove_empty_dirs`
    (or use `removed_if_failed`).
    """
    path = Path(path)
    made: list[Path] = []
    try:
        try:
            made = _make_dirs(path)
            probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-", delete=True)
            probe.close()
        except OSError as exc:
            raise UserError(
                f"cannot write to output folder {str(path)!r} ({exc.strerror}); choose another --out or fix its permissions"
            ) from None
        free = shutil.disk_usage(path).free
        if free < min_free_bytes:
            raise UserError(
                f"not enough free disk under {str(path)!r}: {free / 2**30:.1f} GiB free, "
                f"{min_free_bytes / 2**30:.1f} GiB needed; free space or choose another --out"
            )
    except BaseException:
        remove_empty_dirs(made)
        raise
    if created is not None:
        created.extend(made)
    return path


def check_output_dirs(paths: Iterable[str | os.PathLike], *, created: list[Path] | None = None) -> list[Path]:
    """check_output_dir for several folders: if any check fails, none of the folders created stays."""
    made: list[Path] = []
    try:
        checked = [check_output_dir(path, created=made) for path in paths]
    except BaseException:
        remove_empty_dirs(made)
        raise
    if created is not None:
        created.extend(made)
    return checked


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p `path`; return the folders this call created itself, parents first."""
    missing = []
    folder = path
    # lexists, not exists: a dangling link is not a folder to create (mkdir below then fails on it).
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made = []
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue  # another process made it meanwhile: it is not ours to remove
            made.append(folder)
    except BaseException:
        remove_empty_dirs(made)
        raise
    return made


def remove_empty_dirs(folders: Iterable[Path]) -> None:
    """Remove `folders` (parents first, as check_output_dir lists them) that are still empty, deepest first."""
    for folder in reversed(list(folders)):
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty (something was written there after all) or already gone: leave it


@contextlib.contextmanager
def removed_if_failed() -> Iterator[list[Path]]:
    """Collect folders made by check_output_dir(created=...); remove the empty ones if the block fails.

        with removed_if_failed() as created:
            out = check_output_dir(args.out, created=created)
            ...work that may fail, then write into out...
    """
    created: list[Path] = []
    try:
        yield created
    except BaseException:
        remove_empty_dirs(created)
        raise


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {str(path)!r} does not exist; check the path")
    return path


# ---------------------------------------------------------------------------- stale temporaries
def remove_stale_temporaries(
    folder: str | os.PathLike,
    recursive: bool = True,
    *,
    targets: Iterable[str] | None = None,
    min_age_seconds: float = STALE_TEMPORARY_AGE_SECONDS,
) -> list[Path]:
    """Remove the temporaries that crashed atomic_writes left in `folder`; return the removed paths.

    A file is removed only if all of these hold:
    - its name is atomic_write's `.{target}.XXXXXXXX.tmp` (with `target` in `targets`, if given)
      and it is a plain file, not a link;
    - its last modification is at least `min_age_seconds` old (default one hour);
    - no process holds atomic_write's flock on it. Where the file system has no flock, the age
      alone decides.
    So a temporary that a live process is writing is never removed: it is locked (and, while it
    grows, recent). `recursive` walks the subfolders too, except hidden ones (.git, .snakemake:
    they are not outputs of this project and may hold look-alike names). A missing `folder`
    holds nothing to remove. Files that cannot be removed (permissions) are left and not listed.
    """
    folder = Path(folder)
    wanted = None if targets is None else set(targets)
    removed: list[Path] = []
    now_seconds = time.time()
    for parent in _folders(folder, recursive):
        for entry in _scandir(parent):
            match = TEMPORARY_NAME.match(entry.name)
            if match is None or (wanted is not None and not _target_in(entry.name, wanted)):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                age_seconds = now_seconds - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue  # renamed or removed meanwhile
            if age_seconds < min_age_seconds:
                continue
            if _remove_if_unlocked(Path(entry.path)):
                removed.append(Path(entry.path))
    return removed


def _target_in(name: str, targets: set[str]) -> bool:
    # The target name may itself contain dots ("x.parquet"): test each candidate exactly.
    return any(name.startswith(f".{target}.") and re.fullmatch(r"[a-z0-9_]+\.tmp", name[len(target) + 2:])
               for target in targets)


def _folders(folder: Path, recursive: bool) -> Iterator[str]:
    if not recursive:
        yield str(folder)
        return
    for parent, subfolders, _ in os.walk(folder):  # os.walk does not follow links to folders
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        yield parent


def _scandir(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def _remove_if_unlocked(path: Path) -> bool:
    """Unlink `path` unless a live atomic_write holds its lock; True if it was removed here."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # gone meanwhile (renamed into place), or not ours to open
    try:
        # A shared lock is enough to test for the writer's exclusive one, and a read-only open
        # can take it even where flock is emulated by byte-range locks (NFS).
        try:
            try_flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its writer is alive
        except OSError:
            return False
        try:
            path.unlink()
        except OSError:
            return False
        return True
    finally:
        os.close(fd)
