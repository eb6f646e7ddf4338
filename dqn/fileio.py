"""Atomic writes and up-front checks of output folders.

Every file a long job produces is written under a temporary name in the same folder and renamed
into place, so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from dqn.errors import UserError


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)`, fsync the result and rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; results are shared files, so give them the umask's usual mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def write_parquet(df, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame to Parquet atomically (no index)."""
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")

    return atomic_write(path, write)


def write_torch(obj: Any, path: str | os.PathLike) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def check_output_dir(path: str | os.PathLike, *, min_free_bytes: int = 0) -> Path:
    """Create `path` if needed and fail with one line if it is not writable or the disk is full."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
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
    return path


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {str(path)!r} does not exist; check the path")
    return path
