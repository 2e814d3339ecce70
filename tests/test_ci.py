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


def test_the_wheel_holds_every_package_and_ci_installs_it_outside_the_checkout(tmp_path):
    """pyproject once listed its packages by hand and the wheel lost benchmark/commands: an
    installed drkd-bench failed at start. Every package with an __init__.py must be in it."""
    import sys
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("benchmark", "methods", "analysis"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("drkd_bench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {str(p.relative_to(ROOT)) for pkg in ("benchmark", "methods", "analysis")
                for p in (ROOT / pkg).rglob("__init__.py") if "__pycache__" not in p.parts}
    assert len(packages) >= 12 and not packages - names
    assert "benchmark/configs/quick.yaml" in names
    assert "bash scripts/wheel-check.sh" in (ROOT / ".ci" / "run").read_text()
