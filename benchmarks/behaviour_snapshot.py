"""Record what the command line prints, and compare two records.

A move of code between modules must change no number: this script runs a fixed
set of commands (``--json`` of every analysis, a training run, the built-in
page and a page about a model of one's own), keeps their outputs in a folder,
and compares two such folders key by key. Fields that say *when* or *how long*
(wall time, threads, the temporary folder's name) are dropped before comparing; every
other value must be equal, floats bit for bit.

    python benchmarks/behaviour_snapshot.py record before/
    ... move code ...
    python benchmarks/behaviour_snapshot.py record after/
    python benchmarks/behaviour_snapshot.py compare before/ after/

The built-in page takes a few minutes on a 2-core machine (``--quick`` pages
take seconds; the full one runs with ``--full``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

COMMANDS: dict[str, list[str]] = {
    "scalar-default": ["scalar", "--json"],
    "scalar-exploding": ["scalar", "--a", "1.5", "--x", "1,0.5,-0.3", "--d", "2", "--json"],
    "scalar-long": ["scalar", "--a", "0.5", "--steps", "2000", "--input-seed", "0", "--json"],
    "spectrum-nonnormal": ["spectrum", "--example", "nonnormal", "--json"],
    "spectrum-random": [
        "spectrum",
        "--example",
        "random",
        "--hidden",
        "32",
        "--radius",
        "1.1",
        "--seed",
        "3",
        "--json",
    ],
    "profile-lstm": [
        "profile",
        "--model",
        "lstm:input=4,hidden=16,layers=2,bidirectional=true",
        "--random-input",
        "3,40",
        "--dtype",
        "float64",
        "--json",
    ],
    "profile-gru-fused": [
        "profile",
        "--model",
        "gru:input=3,hidden=8",
        "--random-input",
        "2,30",
        "--route",
        "fused",
        "--json",
    ],
    "profile-rnn-sum": [
        "profile",
        "--model",
        "rnn:input=3,hidden=12",
        "--random-input",
        "2,25",
        "--loss",
        "sum",
        "--json",
    ],
    "lyapunov-random": ["lyapunov", "--random", "20", "--gain", "3", "--steps", "300", "--json"],
    "lyapunov-lstm": [
        "lyapunov",
        "--model",
        "lstm:input=3,hidden=6",
        "--steps",
        "200",
        "--json",
    ],
    "train-rnn": [
        "train",
        "--task",
        "adding",
        "--cell",
        "rnn",
        "--seq-len",
        "20",
        "--hidden",
        "8",
        "--steps",
        "30",
        "--batch",
        "8",
        "--json",
        "--out",
        "{tmp}/run",
    ],
}

REPORTS: dict[str, list[str]] = {
    "report-quick": ["report", "--quick", "--out", "{tmp}/page", "--force"],
    "report-model": [
        "report",
        "--quick",
        "--model",
        "gru:input=3,hidden=8,layers=2",
        "--out",
        "{tmp}/page",
        "--force",
    ],
}

# A temporary folder's name, in what a command printed.
_TEMPORARY = re.compile(r"/tmp/tmp[\w]+")

# Keys whose values say when, how long or where, not what was computed.
VOLATILE = frozenset({"wall_s", "threads"})


def _run(args: list[str], tmp: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "rnngrad", *(a.replace("{tmp}", tmp) for a in args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)


def record(folder: Path, full: bool, only: list[str]) -> None:
    """Run every command (or those named in ``only``) and keep what it printed (and each
    page's results.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    reports = dict(REPORTS)
    if full:
        reports["report-full"] = ["report", "--out", "{tmp}/page", "--force"]
    for name, args in {**COMMANDS, **reports}.items():
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            done = _run(args, tmp)
            kept = {"returncode": done.returncode, "stdout": done.stdout.replace(tmp, "{tmp}")}
            page = Path(tmp) / "page" / "results.json"
            if page.exists():
                kept["results.json"] = page.read_text()
        (folder / f"{name}.json").write_text(json.dumps(kept, indent=1))
        print(f"{name}: exit {done.returncode}", file=sys.stderr)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _strip(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def _parsed(text: str) -> Any:
    try:
        return _strip(json.loads(text))
    except json.JSONDecodeError:
        return text


def _differences(a: Any, b: Any, where: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{where}.{key}: only in one" for key in sorted(set(a) ^ set(b))]
        for key in sorted(set(a) & set(b)):
            found += _differences(a[key], b[key], f"{where}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: lengths {len(a)} and {len(b)}"]
        found = []
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found += _differences(x, y, f"{where}[{index}]")
        return found
    return [] if a == b else [f"{where}: {str(a)[:80]!r} != {str(b)[:80]!r}"]


def compare(before: Path, after: Path) -> int:
    """Print every difference between two records; exit 1 when there is one."""
    found: list[str] = []
    for path in sorted(before.glob("*.json")):
        other = after / path.name
        if not other.exists():
            found.append(f"{path.stem}: missing in {after}")
            continue
        a, b = json.loads(path.read_text()), json.loads(other.read_text())
        for key in sorted(set(a) | set(b)):
            x, y = a.get(key), b.get(key)
            if isinstance(x, str) and isinstance(y, str):
                x, y = _parsed(_TEMPORARY.sub("{tmp}", x)), _parsed(_TEMPORARY.sub("{tmp}", y))
            found += _differences(x, y, f"{path.stem}:{key}")
    for line in found:
        print(line)
    print(f"{len(list(before.glob('*.json')))} records compared, {len(found)} differences")
    return 1 if found else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    rec = verbs.add_parser("record")
    rec.add_argument("folder", type=Path)
    rec.add_argument("--full", action="store_true", help="also the full built-in page")
    rec.add_argument("--only", nargs="*", default=[], help="record these commands alone")
    cmp = verbs.add_parser("compare")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.verb == "record":
        record(args.folder, args.full, args.only)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    raise SystemExit(main())
