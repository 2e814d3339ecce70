"""The chip's calibration: choices from measured step times, a cache keyed by chip, the memory
format and ``train.precision: auto`` that follow it, and the hash that holds what was resolved."""
import dataclasses
import json

import pytest
import yaml

from benchmark import cli, config
from benchmark.jobs.speed import calibrate
from benchmark.store import calibration, tracking

DIGITS = (1, 8)  # digits' input shape: channels, size


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty calibration cache folder of this test's own."""
    monkeypatch.setenv("DRKD_CACHE", str(tmp_path / "cache"))
    calibration.load.cache_clear()
    yield tmp_path / "cache"
    calibration.load.cache_clear()


def _measured(fp32=10.0, fp32_cl=10.0, bf16=20.0, bf16_cl=20.0) -> dict:
    seconds = {"fp32/contiguous": fp32, "fp32/channels_last": fp32_cl,
               "bf16/contiguous": bf16, "bf16/channels_last": bf16_cl}
    return {"arch": "mlp", "channels": 1, "size": 8, "seconds": seconds,
            **calibration.choose(seconds)}


def test_choices_follow_the_declared_rules():
    # channels_last needs >= 1.05x in fp32; bf16 needs >= 1.2x over the best fp32 path
    c = calibration.choose({"fp32/contiguous": 10.0, "fp32/channels_last": 9.6,
                            "bf16/contiguous": 8.5, "bf16/channels_last": 8.4})
    assert (c["memory_format"], c["precision"], c["path"]) == ("contiguous", "fp32",
                                                               "fp32/contiguous")
    assert c["speedup"] == 1.0 and c["bf16_ratio"] == pytest.approx(10 / 8.4)
    c = calibration.choose({"fp32/contiguous": 10.0, "fp32/channels_last": 8.0,
                            "bf16/contiguous": 7.0, "bf16/channels_last": 5.0})
    assert (c["memory_format"], c["precision"], c["path"]) == ("channels_last", "bf16",
                                                               "bf16/channels_last")
    assert c["speedup"] == 2.0 and c["bf16_ratio"] == pytest.approx(1.6)
    c = calibration.choose({"fp32/contiguous": 10.0, "fp32/channels_last": 5.0,
                            "bf16/contiguous": 100.0, "bf16/channels_last": 200.0})
    assert c["path"] == "fp32/channels_last" and c["bf16_ratio"] == pytest.approx(0.05)


def test_the_cache_is_keyed_by_chip(cache, monkeypatch):
    here = calibration.signature()
    calibration.save({calibration.key(1, 8, "mlp"): _measured(fp32_cl=5.0)})
    assert calibration.memory_format(*DIGITS, "mlp") == "channels_last"
    other = {**here, "cpu_flags": here["cpu_flags"] + " amx_bf16", "cpu": "another chip"}
    assert calibration.path_for(other) != calibration.path_for(here)
    monkeypatch.setattr(calibration, "signature", lambda: other)
    calibration.load.cache_clear()
    assert calibration.load() == {} and calibration.memory_format(*DIGITS, "mlp") == "contiguous"
    # a file renamed to the other chip's name is still not read: its signature is this chip's
    calibration.path_for(here).rename(calibration.path_for(other))
    calibration.load.cache_clear()
    assert calibration.load() == {}


def _grid(tmp_path, precision: str) -> str:
    path = tmp_path / f"grid-{precision}.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny", "seeds": [0], "datasets": {"digits": None}, "architectures": ["mlp"],
        "train": {"epochs": 1, "precision": precision}, "methods": ["ce"]}))
    return str(path)


def _finished(results) -> list:
    return [r for r in tracking.Tracker(results=results).runs()
            if r.info.status == "FINISHED" and r.data.tags.get("kind", "train") == "train"]


@pytest.mark.slow
def test_auto_resolves_from_the_calibration_and_the_hash_holds_what_it_resolved(
        tmp_path, cache, capsys):
    calibration.save({calibration.key(*DIGITS, "mlp"): _measured(bf16=20.0)})  # bf16 slower
    results = tmp_path / "r"
    assert cli.main(["grid", _grid(tmp_path, "auto"), "--results", str(results), "--quiet",
                     "--no-report"]) == 0
    runs = _finished(results)
    assert len(runs) == 1 and runs[0].data.params["train.precision"] == "fp32"
    # a plain fp32 grid: the same cell, already finished
    assert cli.main(["grid", _grid(tmp_path, "fp32"), "--results", str(results), "--quiet",
                     "--no-report"]) == 0
    assert len(_finished(results)) == 1
    # bf16 by hand on this "chip": one warning line with the measured ratio
    capsys.readouterr()
    cfg = config.load_grid(_grid(tmp_path, "bf16"))
    assert calibrate.slower_bf16(cfg) == [
        "train.precision: bf16 for digits/mlp: this chip's calibration measured bf16 2.0x "
        "slower than fp32 (ratio 0.50); precision: auto would train fp32 here"]
    # a command restricted to another task (--task) warns about none it does not run
    two = tmp_path / "two.yaml"
    two.write_text(yaml.safe_dump({
        "name": "two", "seeds": [0], "datasets": {"digits": None}, "architectures": ["mlp"],
        "conditions": {"clean": {}, "sym40": {"noise": {"kind": "symmetric", "rate": 0.4}}},
        "train": {"epochs": 1}, "task_train": {"digits:sym40/mlp": {"precision": "bf16"}},
        "methods": ["ce"]}))
    capsys.readouterr()
    assert cli.main(["grid", str(two), "--task", "digits:clean/mlp", "--dry-run",
                     "--results", str(results)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert cli.main(["grid", str(two), "--task", "digits:sym40/mlp", "--dry-run",
                     "--results", str(results)]) == 0
    assert "bf16 for digits:sym40/mlp" in capsys.readouterr().err
    # where bf16 measured faster, auto is bf16: another cell, another hash
    calibration.save({calibration.key(*DIGITS, "mlp"): _measured(bf16=5.0, bf16_cl=6.0)})
    auto = config.load_grid(_grid(tmp_path, "auto"))
    resolved = config.with_precisions(auto, calibrate.precisions(auto))
    assert resolved.train_for("digits", "mlp").precision == "bf16"
    assert auto.train_for("digits", "mlp").precision == "fp32"  # never resolved: fp32


def test_a_run_spec_never_holds_auto():
    spec = config.make_spec("digits", "mlp", "ce", 0, {}, {"epochs": 1})
    with pytest.raises(config.ConfigError, match="auto is resolved"):
        dataclasses.replace(spec, train=dataclasses.replace(spec.train, precision="auto"))


@pytest.mark.slow
def test_runs_record_the_memory_format_the_calibration_chose(tmp_path, cache):
    calibration.save({calibration.key(*DIGITS, "mlp"): _measured(fp32_cl=5.0)})
    results = tmp_path / "r"
    assert cli.main(["grid", _grid(tmp_path, "fp32"), "--results", str(results), "--quiet",
                     "--no-report"]) == 0
    [run] = _finished(results)
    assert run.data.tags["memory_format"] == "channels_last"


def test_calibrate_writes_the_table_the_json_and_the_cache(tmp_path, cache, capsys):
    out = tmp_path / "calibration.json"
    assert cli.main(["speed", "--calibrate", "--dataset", "digits", "--arch", "mlp",
                     "--batch", "16", "--json", str(out), "--results", str(tmp_path)]) == 0
    [row] = json.loads(out.read_text())
    assert {"arch", "path", "speedup", "gflops", "peak_gflops"} <= set(row)
    assert row["arch"] == "mlp" and row["path"] in {"/".join(p) for p in calibration.PATHS}
    assert set(row["seconds"]) == {"/".join(p) for p in calibration.PATHS}
    assert row["speedup"] >= 1.0  # the chosen path is never slower than fp32 contiguous
    assert row["gflops"] > 0 and row["peak_gflops"] > 0
    assert calibration.entry(*DIGITS, "mlp")["path"] == row["path"]
    assert "mlp" in capsys.readouterr().out
    import pandas as pd

    table = pd.read_csv(tmp_path / "speed_calibration.csv")
    assert len(table) == 4 and table["chosen"].sum() == 1
    assert table.loc[table["chosen"], "path"].item() == row["path"]


def test_splits_of_the_cores_and_the_fastest_one_measured():
    assert calibrate.splits(2) == [(2, 1), (1, 2)]
    assert calibrate.splits(6) == [(6, 1), (3, 2), (2, 3), (1, 6)]
    assert calibrate.splits(1) == [(1, 1)]
    # a real measurement on 2 processes of 1 thread and 1 of 2: both train, one is chosen
    [row] = calibrate.measure_splits([{**_measured(), "batch": 16, "classes": 10}], 2,
                                     seconds=0.2)
    assert set(row["splits"]) == {"2x1", "1x2"} and all(v > 0 for v in row["splits"].values())
    best = max(row["splits"], key=row["splits"].get)
    assert row["workers"] == int(best.split("x")[0])
    assert calibrate.measure_splits([_measured()], 1)[0]["workers"] == 1  # one core: nothing


@pytest.mark.slow
def test_a_grid_splits_the_cores_as_the_calibration_measured_fastest(tmp_path, cache):
    """With a calibration that measured 1 process x 2 threads fastest for digits' mlp, a grid
    with no --workers runs one worker on every core's thread (recorded on its runs); without
    one, a worker per core."""
    import os

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: a single split")
    calibration.save({calibration.key(*DIGITS, "mlp"): {**_measured(), "workers": 1,
                                                          "splits": {"2x1": 1.0, "1x2": 2.0}}})
    results = tmp_path / "r"
    assert cli.main(["grid", _grid(tmp_path, "fp32"), "--results", str(results), "--quiet",
                     "--no-report", "--set", "seeds=[0,1]"]) == 0
    runs = _finished(results)
    assert len(runs) == 2 and {r.data.tags["threads"] for r in runs} == {str(os.cpu_count())}
    assert calibration.workers(*DIGITS, "mlp") == 1
