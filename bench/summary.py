"""A benchmark's figures in one shape, so that ``bench.all`` can print every benchmark's in one
table: each ``bench/*.py`` writes its rows as JSON to the file given with ``--summary``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    bench: str  # "mailing"
    figure: str  # what was measured: "hub pixel, every hit stored"
    backend: str  # "sqlite", "postgresql", or "-" for a baseline that uses no database
    value: float
    unit: str  # "hits/s", "ms p99"
    baseline: float | None = None  # the same run's baseline figure, in the same unit
    baseline_label: str = ""  # what that baseline is: "bare aiohttp handler"
    target: str = ""  # the target, in words: ">= 60% of bare"
    met: bool | None = None  # None: a reference figure, no target

    @property
    def lower_is_better(self) -> bool:
        return self.unit == "s" or self.unit.startswith("ms")

    @property
    def ratio(self) -> float | None:
        """The figure as a share of its baseline's speed: for times, the baseline's time over this one."""
        if not self.baseline or not self.value:
            return None
        return self.baseline / self.value if self.lower_is_better else self.value / self.baseline


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summary", metavar="FILE", type=Path, help="also write the figures as JSON (bench.all)")


def write(path: Path | None, rows: Sequence[Row]) -> None:
    if path is not None:
        path.write_text(json.dumps([asdict(row) for row in rows], ensure_ascii=False, indent=1))


def read(path: Path) -> list[Row]:
    return [Row(**row) for row in json.loads(path.read_text())]
