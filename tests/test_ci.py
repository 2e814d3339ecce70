"""The CI script: README's test command, and a failure anywhere in it fails CI."""
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_readmes_test_command():
    line = next(line for line in (ROOT / "README.md").read_text().splitlines()
                if "python -m pytest" in line)
    assert f"( {line} )" in (ROOT / ".ci" / "run").read_text()


def test_a_failed_install_fails_ci_instead_of_going_on_to_the_linter(tmp_path):
    """A full disk made pip fail; the && list's failure did not stop the script (set -e ignores
    it there), the linter passed, and CI reported success without running a test."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    fake = tmp_path / "bin"
    fake.mkdir()
    scripts = {"id": "echo 1000",  # not root: no apt-get
               "python3": "mkdir -p .venv/bin && printf 'true\\n' > .venv/bin/activate",
               "pip": "echo 'OSError: [Errno 28] No space left on device' >&2; exit 1",
               "ruff": "echo 'All checks passed!'"}
    for name, body in scripts.items():
        (fake / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake / name).chmod(0o755)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(fake / "ruff", tmp_path / ".venv" / "bin" / "ruff")  # pip got that far
    env = {**os.environ, "PATH": f"{fake}:/usr/bin:/bin"}
    done = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "All checks passed!" not in done.stdout
