#!/usr/bin/env python3
"""Newcomer's entry point: `python3 dev.py demo` and `python3 dev.py test`.

Creates ./.venv on first use, installs orderbridge with its test tools into it, then runs the
command. Needs nothing but Python 3.11+.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed"


def ensure_env() -> None:
    if not PY.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if not STAMP.exists() or STAMP.stat().st_mtime < pyproject.stat().st_mtime:
        print("installing orderbridge and its test tools into .venv ...", flush=True)
        subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"], check=True)
        STAMP.touch()


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file is the one that tells older Pythons
        sys.exit(f"orderbridge needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    args = sys.argv[1:]
    if not args or args[0] in {"-h", "--help"}:
        print(__doc__)
        print("  python3 dev.py demo [options]   run the demo (see `orderbridge demo --help`)")
        print("  python3 dev.py test [pytest args]   run the test suite")
        print("  python3 dev.py ob ARGS...   run any orderbridge command")
        return 0
    ensure_env()
    cmd, rest = args[0], args[1:]
    if cmd == "test":
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT)
    if cmd == "demo":
        return subprocess.call([str(BIN / "orderbridge"), "demo", *rest], cwd=ROOT)
    if cmd == "ob":
        return subprocess.call([str(BIN / "orderbridge"), *rest], cwd=ROOT)
    print(f"unknown command {cmd!r}; try: python3 dev.py --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
