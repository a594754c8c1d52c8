"""The report's folder: what ``--out`` may be, and how a new page takes an old one's place.

A report writes a manifest, ``.rnngrad-report.json``, listing every file it wrote.
``--force`` replaces a folder only when everything in it is on its manifest: a folder
that merely looks like a report, or a report beside which the user put files of their
own, is refused in one line and nothing is deleted. The new page is staged beside the
folder and swapped in, the old one moved aside first and removed last, so that at
every moment one whole report exists.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from rnngrad.errors import InvalidInputError

__all__ = ["MANIFEST", "STAGING", "prepare_folder", "swap_into_place", "write_manifest"]

#: The manifest of the files a report wrote, in the report's folder.
MANIFEST = ".rnngrad-report.json"
_MARK = "rnngrad report"


def write_manifest(folder: Path) -> None:
    """List every file and folder under ``folder`` (relative POSIX paths) in its manifest."""
    entries = sorted(folder.rglob("*"))
    files = [path.relative_to(folder).as_posix() for path in entries if path.is_file()]
    folders = [path.relative_to(folder).as_posix() for path in entries if path.is_dir()]
    manifest = {"written_by": _MARK, "files": files, "folders": folders}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _foreign(folder: Path) -> list[str] | None:
    """What in ``folder`` rnngrad did not write: ``None`` when it has no manifest (not a
    report), else the paths that are not on it (empty: the folder is wholly a report)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("written_by") != _MARK:
            return None
        listed, folders = set(manifest["files"]), set(manifest["folders"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all(isinstance(name, str) for name in listed | folders):
        return None
    foreign = []
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if name == MANIFEST:
            continue
        if path.is_symlink() or not (
            (path.is_file() and name in listed) or (path.is_dir() and name in folders)
        ):
            foreign.append(name)
    return foreign


STAGING = ".rnngrad-report-"
_RETIRED = ".rnngrad-old-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_leftovers(parent: Path) -> None:
    """Remove staging folders that a killed run left beside ``out`` (their owner is dead)."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        for prefix in (STAGING, _RETIRED):
            if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink():
                owner = entry.name.removeprefix(prefix).split("-", 1)[0]
                if owner.isdigit() and not _alive(int(owner)):
                    shutil.rmtree(entry, ignore_errors=True)


def prepare_folder(out: Path, force: bool) -> None:
    """Check ``out`` before any work: what may be replaced, and that it can be written.

    ``--force`` replaces only a folder that holds an earlier report and nothing else (every
    file on its manifest), and never the
    working directory, one of its parents, the home folder or a symbolic link
    (which is refused rather than followed: the report would land elsewhere).
    Staging folders left by a killed run beside ``out`` are removed.

    Raises:
        InvalidInputError: ``out`` is a non-empty folder (without ``force``), a
            file, a symbolic link, the working directory or one of its parents,
            a folder that is not a report (with ``force``), or its parent
            cannot be written.
    """
    if out.is_symlink():
        raise InvalidInputError(
            f"{out} is a symbolic link; give the folder itself as --out ({os.path.realpath(out)})"
        )
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    protected = {cwd, *cwd.parents, Path.home().resolve(), Path(resolved.anchor)}
    if resolved in protected:
        raise InvalidInputError(
            f"--out {out} is the working directory, one of its parents or the home folder; "
            "give the report a folder of its own, such as --out rnngrad-report"
        )
    if out.exists():
        if not out.is_dir():
            raise InvalidInputError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            if not force:
                raise InvalidInputError(
                    f"{out} exists and is not empty; pass --force to replace it"
                )
            foreign = _foreign(out)
            if foreign is None:
                raise InvalidInputError(
                    f"{out} holds files that are not an rnngrad report (it has no {MANIFEST}); "
                    "--force replaces only an earlier report: choose another --out"
                )
            if foreign:
                shown = ", ".join(foreign[:3]) + (
                    f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
                )
                raise InvalidInputError(
                    f"{out} holds files rnngrad did not write ({shown}); --force replaces only "
                    "what an earlier report wrote: move them or choose another --out"
                )
    parent = resolved.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=".rnngrad-", dir=parent)
        os.rmdir(probe)
    except OSError as error:
        raise InvalidInputError(f"{out}: cannot be written ({error.strerror or error})") from None
    _clean_leftovers(parent)


def swap_into_place(staging: Path, out: Path) -> None:
    """``staging`` becomes ``out``; an earlier report is moved aside first and removed last,
    so that at every moment one whole report (old or new) exists."""
    retired = None
    if out.exists():
        retired = Path(tempfile.mkdtemp(prefix=f"{_RETIRED}{os.getpid()}-", dir=out.parent))
        os.rmdir(retired)
        os.replace(out, retired)
    try:
        os.replace(staging, out)
    except BaseException:
        if retired is not None:
            os.replace(retired, out)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
