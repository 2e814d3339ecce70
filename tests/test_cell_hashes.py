"""A cell's hash is its identity in every store and edition: moving code must not change it.
``data/cell-hashes.json.gz`` holds the key -> hash of every cell of the shipped configs that need
no tuned study, written before the round-five move of the house (quick: 72 cells; 2,422 in all).
A deliberate change of a shipped config regenerates it (``python tests/test_cell_hashes.py``)."""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from benchmark import config
from benchmark.jobs import grid

FIXTURE = Path(__file__).parent / "data" / "cell-hashes.json.gz"
EXPECTED = json.loads(gzip.decompress(FIXTURE.read_bytes()))


def hashes(name: str) -> dict[str, str]:
    return {spec.key: spec.hash for spec in grid.expand(config.load_grid(name))}


def test_the_fixture_holds_the_quick_grid():
    assert len(EXPECTED["quick"]) == 72


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_cells_keep_their_hashes(name):
    assert hashes(name) == EXPECTED[name]


if __name__ == "__main__":  # regenerate after a deliberate change of a shipped config
    names = sys.argv[1:] or sorted(EXPECTED)
    FIXTURE.write_bytes(gzip.compress(json.dumps(
        {**EXPECTED, **{n: hashes(n) for n in names}}, sort_keys=True).encode(), mtime=0))
