"""How long ``cvault`` takes to start, beside the floor and the peer in the same run.

Each row runs a command ``--runs`` times as a fresh process (alternating, so that drift
hits every row alike) and reports the median and the slowest wall time, and how many
modules the process imported (counted in a run of its own, ``sys.modules`` at exit):

* ``python -c pass``: the floor (the interpreter alone);
* ``python -c "import typer"``: the peer (the CLI framework alone);
* ``python -m api.cli --help``: the command list;
* ``python -m api.cli token issue ...``: a development token (the local signing key);
* ``python -m api.cli policy --help``: a command group's help.

``--importtime`` prints, for one command, the ten slowest imports (``python -X importtime``).
The commands run in a throwaway data directory. Run: ``python -m bench.cli_startup``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

_COUNT = "import atexit, sys; atexit.register(lambda: print(len(sys.modules), file=sys.stderr))"
_TOKEN = ["token", "issue", "--role", "support_agent", "--sub", "bench"]


def _commands() -> dict[str, list[str]]:
    py = sys.executable
    return {
        "floor: python -c pass": [py, "-c", "pass"],
        "peer: import typer": [py, "-c", "import typer"],
        "cvault --help": [py, "-m", "api.cli", "--help"],
        "cvault policy --help": [py, "-m", "api.cli", "policy", "--help"],
        "cvault token issue": [py, "-m", "api.cli", *_TOKEN],
    }


def _run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    return time.perf_counter() - started


def _modules(argv: list[str], env: dict[str, str]) -> int:
    """How many modules the command leaves in ``sys.modules`` (a run of its own)."""
    if argv[1] == "-m":
        main = f"import runpy; sys.argv = ['cvault', *{argv[3:]!r}]; "
        main += f"runpy.run_module({argv[2]!r}, run_name='__main__')"
    else:
        main = argv[2]
    done = subprocess.run(  # noqa: S603
        [argv[0], "-c", f"{_COUNT}\n{main}"],
        env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return int(done.stderr.strip().splitlines()[-1])


def _importtime(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(  # noqa: S603
        [argv[0], "-X", "importtime", *argv[1:]],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    print("\nslowest imports (cumulative microseconds):")
    for micros, name in sorted(rows, reverse=True)[:10]:
        print(f"{micros:>10}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command")
    parser.add_argument("--importtime", action="store_true", help="slowest imports of --help")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="cvault-bench-") as data:
        env = {**os.environ, "CVAULT_DATA_DIR": data, "PYTHONPATH": str(root)}
        commands = _commands()
        for argv in commands.values():  # warm the disk cache and the signing key
            _run(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_run(argv, env))
        modules = {name: _modules(argv, env) for name, argv in commands.items()}
        print(f"python {sys.version.split()[0]}, {args.runs} runs each, {os.cpu_count()} CPUs")
        print(f"{'command':<24}{'median s':>10}{'max s':>8}{'modules':>9}")
        for name, samples in times.items():
            print(
                f"{name:<24}{statistics.median(samples):>10.3f}{max(samples):>8.3f}"
                f"{modules[name]:>9}"
            )
        if args.importtime:
            _importtime(commands["cvault --help"], env)


if __name__ == "__main__":
    main()
