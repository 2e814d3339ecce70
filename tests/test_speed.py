"""The speed command's output shape on a tiny model (no timing assertions)."""
import csv

from benchmark import cli, speed


def test_speed_command_prints_the_table_and_writes_csv(tmp_path, capsys):
    code = cli.main(["speed", "--dataset", "digits", "--arch", "cnn8", "--batch", "32",
                     "--steps", "2", "--repeats", "1", "--epoch-images", "128",
                     "--loader-workers", "0", "--device", "cpu", "--results", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    steps = [f"harness step: {label}" for label, _, _ in speed.variants()]
    names = ["bare step (limit)", *steps,
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
    for name in ("ps-kd", "cs-kd", "zipf-ls", "dlb"):
        assert f"harness step: {name}" in steps
    fwd = {r["measurement"]: r["forwards"] for r in rows}
    assert fwd["harness step: cs-kd"] == "2+0" and fwd["harness step: dlb"] == "2+0"
    assert fwd["harness step: drkd (ema)"] == "1+1" and fwd["harness step: ps-kd"] == "1+0"
    for r in rows:
        assert float(r["images_per_s"]) > 0
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
