"""Training on the embedded digits: every method learns, runs are deterministic and resumable."""
import math

import pytest
import torch

import methods
from benchmark import config, data
from benchmark.jobs import train

DIGITS = data.load("digits")


def spec(method, epochs=4, seed=0, **hp):
    return config.make_spec("digits", "cnn8", method, seed, hp, {"epochs": epochs})


def ce_teacher(epochs=4):
    return train.train(spec("ce", epochs), DIGITS).model


VARIANTS = [(name, {}) for name in methods.names() if name != "drkd"] + [
    ("drkd", {"teacher": source}) for source in methods.get("drkd").params["teacher"].choices]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v[0] + "-" + v[1].get("teacher", ""))
def test_each_method_learns_digits(variant):
    name, hp = variant
    s = spec(name, epochs=6, **hp)
    needs = methods.get(name).teacher_source(s.hyperparameters) == "pretrained"
    result = train.train(s, DIGITS, teacher_model=ce_teacher() if needs else None)
    final = result.final
    assert len(result.history) == 6
    assert final["test_top1"] > 0.6, final  # chance is 0.10
    assert {"val_top1", "val_top5", "val_nll", "val_ece", "test_top5", "train_acc",
            "train_loss", "lr"} <= set(final)
    if name == "drkd":
        assert 0 <= final["diag_rectified"] <= 1
    else:
        assert "diag_rectified" not in final
    has_teacher = methods.get(name).teacher_source(s.hyperparameters) != "none"
    assert ("diag_teacher_top1" in final) == has_teacher
    if has_teacher:
        assert 0 <= final["diag_teacher_agreement"] <= 1
    if name == "drkd" and hp["teacher"] in ("pretrained", "online"):
        # these teachers see the student's own batch: swapped exactly where the teacher is wrong
        assert final["diag_teacher_top1"] == pytest.approx(1 - final["diag_rectified"])


def test_online_drkd_rectifies_more_early_than_late():
    h = train.train(spec("drkd", 6, teacher="online"), DIGITS).history
    assert h[0]["diag_rectified"] > h[-1]["diag_rectified"]


def test_same_seed_same_metrics_other_seed_differs():
    a = train.train(spec("drkd", 3, teacher="online"), DIGITS).history
    b = train.train(spec("drkd", 3, teacher="online"), DIGITS).history
    c = train.train(spec("drkd", 3, seed=1, teacher="online"), DIGITS).history
    assert drop(a) == drop(b)
    assert a[-1]["train_loss"] != c[-1]["train_loss"]


def drop(rows):
    """The history without wall-clock times."""
    return [{k: v for k, v in r.items() if k not in ("epoch_seconds", "cost_train_seconds")}
            for r in rows]


@pytest.mark.parametrize("method,hp", [("ce", {}), ("tfkd-self", {}),
                                       ("tfkd-self", {"teacher": "previous-epoch"}),
                                       ("drkd", {"teacher": "ema"}), ("cs-kd", {}), ("dlb", {}),
                                       ("ps-kd", {})])
def test_interrupted_run_resumes_to_identical_metrics(tmp_path, method, hp):
    s = spec(method, 5, **hp)
    teacher = ce_teacher(2) if s.teacher_spec() is not None else None
    full = train.train(s, DIGITS, tmp_path / "a", teacher_model=teacher).history
    part = train.train(s, DIGITS, tmp_path / "b", teacher_model=teacher, stop_after=2)
    assert len(part.history) == 2
    torch.manual_seed(1234)  # a fresh process would have another global RNG state
    rest = train.train(s, DIGITS, tmp_path / "b", teacher_model=teacher)
    assert rest.resumed_from == 2
    assert drop(rest.history) == drop(full)
    state = torch.load(tmp_path / "b" / train.CHECKPOINT, weights_only=True)
    assert set(state) >= {"model", "optimizer", "scheduler", "generator", "torch_rng", "history",
                          "steps", "plan", "teacher"}


def test_checkpoint_of_another_spec_is_ignored(tmp_path):
    train.train(spec("ce", 2), DIGITS, tmp_path, stop_after=1)
    other = train.train(spec("lsr", 2), DIGITS, tmp_path)
    assert other.resumed_from == 0


def test_lr_schedule_warmup_then_multistep_and_cosine():
    s = config.TrainSettings(epochs=10, warmup_epochs=1, schedule="multistep",
                             milestones=(4, 8), gamma=0.1)
    assert train.lr_factor(0, s, 10) == pytest.approx(0.1)
    assert train.lr_factor(9, s, 10) == pytest.approx(1.0)
    assert train.lr_factor(39, s, 10) == pytest.approx(1.0)
    assert train.lr_factor(40, s, 10) == pytest.approx(0.1)
    assert train.lr_factor(85, s, 10) == pytest.approx(0.01)
    c = config.TrainSettings(epochs=10, warmup_epochs=0, schedule="cosine")
    assert train.lr_factor(0, c, 10) == pytest.approx(1.0)
    assert train.lr_factor(50, c, 10) == pytest.approx(0.5)
    assert train.lr_factor(100, c, 10) == pytest.approx(0.0, abs=1e-12)
    assert config.TrainSettings(batch_size=64, lr=0.1).effective_lr == pytest.approx(0.05)


def test_divergence_is_reported(monkeypatch):
    s = config.make_spec("digits", "cnn8", "ce", 0, {}, {"epochs": 2, "lr": 1e6})
    with pytest.raises(train.TrainingDiverged, match="loss is"):
        train.train(s, DIGITS)


def test_test_every_k_epochs_evaluates_the_test_split_there_and_last_and_trains_the_same():
    every = train.train(spec("drkd", 5, teacher="previous-epoch"), DIGITS).history
    s = config.make_spec("digits", "cnn8", "drkd", 0, {"teacher": "previous-epoch"},
                         {"epochs": 5, "test_every": 2})
    sparse = train.train(s, DIGITS).history
    assert [r["epoch"] for r in sparse if "test_top1" in r] == [2, 4, 5]
    for a, b in zip(drop(every), drop(sparse)):  # evaluation changes no weight or random stream
        assert b == {k: v for k, v in a.items() if "test_" not in k or b["epoch"] in (2, 4, 5)}
    assert s.hash != spec("drkd", 5, teacher="previous-epoch").hash  # the record differs
    with pytest.raises(config.ConfigError, match="test_every must be >= 1"):
        config.build(config.TrainSettings, {"test_every": 0}, "train")


def test_tuning_data_without_test_split_computes_no_test_metrics():
    d = data.load("digits")
    d.test_x = d.test_y = None
    final = train.train(spec("ce", 1), d).final
    assert not any(k.startswith("test_") for k in final) and "val_top1" in final
    assert math.isfinite(final["val_nll"])


def test_gpu_options_run_on_cpu_bf16_autocast_and_channels_last():
    s = config.make_spec("digits", "cnn8", "drkd", 0, {"teacher": "online"},
                         {"epochs": 3, "precision": "bf16"})
    final = train.train(s, DIGITS, channels_last=True).final
    assert final["test_top1"] > 0.5 and math.isfinite(final["train_loss"])


def test_no_host_synchronisation_inside_the_training_steps(monkeypatch):
    """Metrics stay on the device during an epoch: no .item()/.tolist()/.cpu() per batch."""
    calls = []
    for name in ("item", "tolist", "cpu", "numpy"):
        real = getattr(torch.Tensor, name)

        def spy(self, *a, _real=real, _name=name, **k):
            calls.append(_name)
            return _real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, spy)
    for name, source in [("drkd", "pretrained"), ("drkd", "ema"), ("drkd", "previous-epoch"),
                         ("cs-kd", None), ("dlb", None)]:
        calls.clear()
        s = spec(name, 1, **({"teacher": source} if source else {}))
        run = train.build(s, DIGITS, torch.device("cpu"), train.models.build("cnn8", 1, 10, 8),
                          amp=False, channels_last=False)
        steps = []
        real_step = run.step.__call__
        for batch in run.plan.epoch():
            steps.append(real_step(DIGITS.train_x, DIGITS.train_y, batch))
        assert calls == [], (name, source)
        terms, diag, _, _, _ = steps[-1]
        assert {"loss"} <= set(terms) and {"teacher_top1", "teacher_agreement"} == set(diag)


def test_compiled_training_forward_matches_eager_and_checkpoints_the_plain_model(tmp_path):
    """torch.compile (opt-in, hashed) trains the same model to within float noise; the state
    saved for resuming is the eager module's (no ``_orig_mod.`` keys)."""
    eager = config.make_spec("digits", "mlp", "drkd", 0, {"teacher": "online"}, {"epochs": 2})
    compiled = config.make_spec("digits", "mlp", "drkd", 0, {"teacher": "online"},
                                {"epochs": 2, "compile": True})
    a = train.train(eager, DIGITS).history
    b = train.train(compiled, DIGITS, tmp_path).history
    for ra, rb in zip(a, b):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-3)
        assert rb["test_top1"] == pytest.approx(ra["test_top1"], abs=0.01)
    state = torch.load(tmp_path / train.CHECKPOINT, weights_only=True)
    assert not any(k.startswith("_orig_mod") for k in state["model"])
