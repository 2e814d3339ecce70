"""``drkd-bench schema``: the grid config's JSON Schema (or its key tables), from the one
declaration in benchmark/config/."""
from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("schema", help="print the grid config's JSON Schema (for an editor's YAML "
                                      "language server)",
                       description="Print the JSON Schema (draft 2020-12) every grid config is "
                                   "checked against: each key's type, valid range, default and "
                                   "meaning, from the same declaration the harness validates "
                                   "with. An editor with a YAML language server checks a config "
                                   "as it is typed when its first line is '# yaml-language-"
                                   "server: $schema=<path of this file>' (the shipped configs "
                                   "point to benchmark/configs/drkd-bench.schema.json).")
    p.add_argument("--markdown", action="store_true", help="the key tables of "
                                                           "docs/config-keys.md instead")
    return p


def run(args) -> int:
    from benchmark.config import reference

    print(reference.markdown() if args.markdown else reference.json_text(), end="")
    return 0
