"""The speed command's output shape on a tiny model (no timing assertions)."""
import csv

import pytest

from benchmark import cli, config
from benchmark.jobs import speed


def test_speed_command_prints_the_table_and_writes_csv(tmp_path, capsys):
    code = cli.main(["speed", "--dataset", "digits", "--arch", "cnn8", "--batch", "32",
                     "--steps", "2", "--repeats", "1", "--epoch-images", "128",
                     "--loader-workers", "0", "--device", "cpu", "--results", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    steps = [f"harness step: {label}" for label, _, _ in speed.variants()]
    names = ["bare step (limit)", *steps,
             "ce epoch: 1,347 training images at the harness ce step rate",
             "evaluation forward (no gradient)",
             "harness step: drkd (ema) vs drkd (pretrained)",
             "data pipeline: PIL DataLoader (reference)",
             "data pipeline: harness batched tensors", "tfkd-self epoch: reference-style loop",
             "tfkd-self epoch: compute limit (bare step + teacher forward)",
             "tfkd-self epoch: harness vs reference", "tfkd-self epoch: harness vs limit"]
    for name in names:
        assert name in out
    assert "peak resident memory" in out
    with open(tmp_path / "speed_digits_cnn8_cpu.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["measurement"] for r in rows] == names
    # every method and every teacher source of tfkd-self and drkd is costed
    for source in ("pretrained", "online", "previous-epoch", "ema"):
        assert f"harness step: drkd ({source})" in steps
        assert f"harness step: tfkd-self ({source})" in steps
    for name in ("ps-kd", "cs-kd", "zipf-ls (paper)", "zipf-ls (code)", "dlb"):
        assert f"harness step: {name}" in steps
    fwd = {r["measurement"]: r["forwards"] for r in rows}
    assert fwd["harness step: cs-kd"] == "2+0" and fwd["harness step: dlb"] == "2+0"
    assert fwd["harness step: drkd (ema)"] == "1+1" and fwd["harness step: ps-kd"] == "1+0"
    for r in rows:
        assert float(r["images_per_s"]) > 0
        assert r["data"] == speed.DATA_NOTE and r["peak_gpu_mb"] == ""  # no GPU memory on a CPU
        if r["target"]:
            assert float(r["ratio"]) > 0 and r["ok"] in ("yes", "NO")
    ce = next(r for r in rows if r["measurement"] == "harness step: ce")
    bare = next(r for r in rows if r["measurement"] == "bare step (limit)")
    expect = float(ce["images_per_s"]) / float(bare["images_per_s"])
    assert abs(float(ce["ratio"]) - expect) <= 1e-3 * expect + 1e-4  # rounding of the CSV


def test_pil_reference_pipeline_matches_the_harness_transform_family():
    d = speed.synthetic("cifar10", 8)
    ds = speed._PILDataset(d)
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and isinstance(y, int)
    assert abs(float(x.mean())) < 3  # normalised


def test_bad_speed_arguments(capsys):
    assert cli.main(["speed", "--dataset", "mnist"]) == 2
    assert "choose one of" in capsys.readouterr().err
    assert cli.main(["speed", "--steps", "0"]) == 2


def test_ce_epoch_row_is_the_training_images_at_the_ce_step_rate(tmp_path):
    cli.main(["speed", "--dataset", "digits", "--arch", "mlp", "--batch", "32", "--steps", "1",
              "--repeats", "1", "--epoch-images", "64", "--loader-workers", "0", "--device",
              "cpu", "--results", str(tmp_path)])
    with open(tmp_path / "speed_digits_mlp_cpu.csv") as f:
        rows = {r["measurement"]: r for r in csv.DictReader(f)}
    epoch = rows["ce epoch: 1,347 training images at the harness ce step rate"]
    rate = float(rows["harness step: ce"]["images_per_s"])
    assert float(epoch["seconds"]) == pytest.approx(1347 / rate, rel=1e-3, abs=0.01)


def test_projection_of_a_grid_from_measured_rates():
    """Exact arithmetic on made-up rates: quick = digits x {cnn8, mlp} x 12 variants x 3 seeds,
    20 epochs; round(0.1 x 1347) = 135 validation images, 1212 training and 450 test."""
    def rows(rate: float) -> list:
        out = [speed.Row(f"harness step: {label}", rate) for label, _, _ in speed.variants()]
        out.append(speed.Row("evaluation forward (no gradient)", 2 * rate))
        out.append(speed.Row("1 cell(s) per device: aggregate ce images/s", rate, ratio=1.0))
        out.append(speed.Row("2 cell(s) per device: aggregate ce images/s", rate, ratio=1.6))
        return out

    got = {r.name: r.seconds for r in speed.project(config.load_grid("quick"),
                                                    {"cnn8": rows(100.0), "mlp": rows(200.0)})}
    cell = {"cnn8": 20 * (1212 / 100 + (135 + 450) / 200),
            "mlp": 20 * (1212 / 200 + (135 + 450) / 400)}
    total = 36 * (cell["cnn8"] + cell["mlp"])
    assert got["projected quick: 72 cells on 1 GPU(s), 1 cell(s) per GPU"] == \
        pytest.approx(total)
    assert got["projected quick: 72 cells on 1 GPU(s), 2 cell(s) per GPU"] == \
        pytest.approx(total / 1.6)
    # 8 GPUs, 2 per GPU: the critical path (CE then a cell distilling from it) is shorter than
    # the share of the total, so the share decides
    assert got["projected quick: 72 cells on 8 GPU(s), 2 cell(s) per GPU"] == \
        pytest.approx(max(total / (8 * 1.6), 2 * cell["cnn8"] * 2 / 1.6))


def test_speed_rejects_a_projection_without_every_arch(capsys):
    assert cli.main(["speed", "--dataset", "digits", "--arch", "mlp", "--project", "quick"]) == 2
    assert "missing --arch cnn8" in capsys.readouterr().err
    assert cli.main(["speed", "--arch", "mlp", "--cells-per-gpu", "1,x"]) == 2
    assert cli.main(["speed", "--arch", "mlp", "--compile", "resnet18"]) == 2


@pytest.mark.slow
def test_gpu_check_script_runs_in_tiny_mode_on_the_cpu(tmp_path):
    """scripts/gpu-check.sh --tiny: every step of the GPU script at toy sizes (figures mean
    nothing); every CSV written, the projection covers paper-cifar100's 54 cells."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(root / "scripts" / "gpu-check.sh"), "--tiny",
                           str(tmp_path)], env=env, capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    for arch in ("resnet18", "mobilenetv2", "shufflenetv2"):
        with open(tmp_path / f"speed_digits_{arch}_cpu.csv") as f:
            names = [r["measurement"] for r in csv.DictReader(f)]
        assert "2 cell(s) per device: aggregate ce images/s" in names
    with open(tmp_path / "speed_projection_paper-cifar100_cpu.csv") as f:
        projected = list(csv.DictReader(f))
    assert len(projected) >= 2 and all("54 cells" in r["measurement"] for r in projected)
    assert all(float(r["seconds"]) > 0 for r in projected)
    assert "gpu-check:" in (tmp_path / "speed.txt").read_text()
