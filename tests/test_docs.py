"""What the docs show a command printing is what it prints: every ``$ drkd-bench ...`` example
of docs/usage.md runs here, and each line shown under it (``...`` skips lines) must be a line of
its output, so a changed number cannot go stale in the docs."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def examples(path: Path) -> list[tuple[str, list[str]]]:
    """(command, the lines shown as its output) of each fenced ``$ drkd-bench`` example."""
    out = []
    for block in re.findall(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", path.read_text(),
                            flags=re.S | re.M):
        lines = [line.strip() for line in block.splitlines()]
        if lines and lines[0].startswith("$ drkd-bench "):
            out.append((lines[0][2:], [s for s in lines[1:] if s and s != "..."]))
    return out


EXAMPLES = examples(ROOT / "docs" / "usage.md")


def test_the_docs_have_examples_to_check():
    assert len(EXAMPLES) >= 1


@pytest.mark.parametrize("command,shown", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_each_example_prints_what_the_docs_show(command, shown):
    argv = shlex.split(command)[1:]
    done = subprocess.run([sys.executable, "-m", "benchmark.cli", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    printed = {line.strip() for line in done.stdout.splitlines()}
    assert [line for line in shown if line not in printed] == []


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", path.read_text(), flags=re.S | re.M)
    found = {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}
    return found | set(re.findall(r'id="([^"]+)"', text))


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "results" / "published" / "PROVENANCE.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_anchor_a_doc_links_to_exists(doc):
    dead = []
    for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", doc.read_text()):
        path = (doc.parent / target).resolve() if target else doc
        if path.suffix == ".md" and path.is_file() and anchor not in _anchors(path):
            dead.append(f"{target}#{anchor}")
    assert dead == []
