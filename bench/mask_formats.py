"""What mask formats cost: each format beside today's mask (the peer) and a copy of the
value (the floor), and loading a policy with p3 lines beside the same policy without.

Run: ``python -m bench.mask_formats [--values 20000]``. Prints microseconds per value
(the best of 5 runs) for each field and format, and milliseconds per policy load (the
best of 5) for the default policy, with 6 p3 lines, and with 60 (patterns included).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from policies import PolicyEnforcer, default_policy_lines
from policies.mask_formats import FORMATS, mask_as

__all__ = ["main"]

_VALUES = {
    "email": ["zahra.chitpakdee@example.ir", "สมชาย@ตัวอย่าง.ไทย", "张伟@例子.中国"],
    "phone": ["+989123456789", "+66812345678", "+8613812345678"],
    "first_name": ["زهرا", "จิตรภักดี", "王小明"],
    "last_name": ["Mary Ann", "محمد رضا", "Ét\u0301ienne"],
    "birth_date": ["1990-04-17", "1985-12-01", "2001-02-28"],
    "address": ["خیابان ولیعصر، تهران", "12 Rue de Rivoli, Paris", "北京市朝阳区"],
}
_ROLES = ("support_agent", "marketing", "compliance_officer", "admin", "analyst")
_PURPOSES = ("support", "marketing_email", "marketing_sms", "compliance", "administration")


def _best(run: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _per_value(values: Sequence[str], fn: Callable[[str], object], n: int) -> float:
    batch = [values[i % len(values)] for i in range(n)]

    def run() -> None:
        for value in batch:
            fn(value)

    return _best(run) / n * 1e6


def _format_lines(count: int) -> list[str]:
    lines: list[str] = []
    for resource, formats in FORMATS.items():
        for role in _ROLES:
            for purpose in _PURPOSES:
                if len(lines) < count:
                    lines.append(f"p3, {role}, {resource}, {purpose}, {formats[-1].value}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--values", type=int, default=20_000)
    n = parser.parse_args().values
    print(f"per value, microseconds (best of 5 runs of {n} values)")
    print(f"{'field':<11} {'format':<13} {'us':>6}")
    for resource, formats in FORMATS.items():
        values = _VALUES[resource]
        print(f"{resource:<11} {'floor: copy':<13} {_per_value(values, str, n):6.2f}")
        for fmt in formats:

            def masked(value: str, resource: str = resource, fmt: str = fmt.value) -> str:
                return mask_as(resource, value, fmt)

            print(f"{resource:<11} {fmt.value:<13} {_per_value(values, masked, n):6.2f}")
    base = default_policy_lines()
    print("policy load, milliseconds (best of 5)")
    for label, extra in [
        ("default (no p3)", []),
        ("6 p3 lines", _format_lines(6)),
        ("60 p3 lines", [*_format_lines(59), "p3, *, phone, *, country_code"]),
    ]:
        lines = [*base, *extra]

        def load(lines: list[str] = lines) -> None:
            PolicyEnforcer.from_lines(lines)

        print(f"{label:<16} {_best(load) * 1e3:8.2f}")


if __name__ == "__main__":
    main()
