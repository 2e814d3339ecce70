"""Teacher sources and batch plans: exact memory and EMA contents, plan invariants."""

import torch
import torch.nn.functional as F

from benchmark import config, data
from benchmark.data import plans
from benchmark.jobs import train
from benchmark.models import teachers

DIGITS = data.load("digits")
CPU = torch.device("cpu")


def build(method, epochs=3, **hp):
    s = config.make_spec("digits", "mlp", method, 0, hp, {"epochs": epochs})
    return train.build(s, DIGITS, CPU, None, amp=False, channels_last=False)


def test_previous_epoch_reads_exactly_what_was_written_one_epoch_earlier():
    run = build("tfkd-self", teacher="previous-epoch")
    t = run.teacher
    written, read = {}, []
    real_after, real_logits = t.after_step, t.logits

    def after(view):
        for i, row in zip(view.indices.tolist(), view.student_logits):
            written.setdefault(view.epoch, {})[i] = row.clone()
        real_after(view)

    def logits(view):
        out = real_logits(view)
        read.append((view.epoch, view.indices[:view.rows].tolist(), out.clone()))
        return out

    t.after_step, t.logits = after, logits
    for epoch in (1, 2):
        run.step.set_epoch(epoch)
        train.train_epoch(run.step, DIGITS.train_x, DIGITS.train_y, run.plan)
    labels = DIGITS.train_y
    for epoch, idx, out in read:
        if epoch == 1:  # nothing stored yet: the label, as a one-hot softmax at any temperature
            for T in (1.0, 6.0):
                assert torch.equal(F.softmax(out / T, 1), F.one_hot(labels[idx], 10).float())
        else:
            for i, row in zip(idx, out):
                expect = written[1].get(i)
                if expect is None:  # dropped with the last incomplete batch of epoch 1
                    assert torch.equal(F.softmax(row, 0), F.one_hot(labels[i], 10).float())
                else:
                    assert torch.equal(row, expect)
    assert sum(len(idx) for e, idx, _ in read if e == 2) == run.plan.steps * run.plan.batch


def test_ema_matches_a_hand_computed_average():
    run = build("drkd", teacher="ema", ema_decay=0.9)
    params = lambda m: [p.detach().clone() for p in m.parameters()]  # noqa: E731
    expect = params(run.model)  # the EMA starts as a copy of the student
    for s, batch in enumerate(run.plan.epoch()):
        if s == 4:
            break
        run.step(DIGITS.train_x, DIGITS.train_y, batch)
        d = min(0.9, 1 - 1 / (s + 1))  # 0 at the first update: a copy
        expect = [d * e + (1 - d) * p for e, p in zip(expect, params(run.model))]
    for e, got in zip(expect, params(run.teacher.model)):
        assert torch.allclose(e, got, atol=1e-6)
    assert not run.teacher.model.training  # run in eval mode


def test_class_paired_partners_share_the_anchors_class_and_anchors_cover_the_epoch():
    g = torch.Generator().manual_seed(0)
    plan = plans.make("class-paired", DIGITS.train_y, 64, g)
    seen = []
    for batch in plan.epoch():
        assert torch.equal(DIGITS.train_y[batch.paired], DIGITS.train_y[batch.idx])
        seen += batch.idx.tolist()
    assert len(seen) == len(set(seen)) == plan.steps * 64
    assert plan.forwarded_per_step() == 128


def test_overlap_repeats_the_previous_new_half_across_epochs_and_resumes():
    g = torch.Generator().manual_seed(0)
    plan = plans.make("overlap", DIGITS.train_y, 32, g)
    batches = [b for _ in range(2) for b in plan.epoch()]
    assert batches[0].taught == 0 and len(batches[0].idx) == 32
    for prev, cur in zip(batches, batches[1:]):
        assert cur.taught == 32
        assert torch.equal(cur.idx[:32], prev.idx[-32:])  # half of b+1 is b's second half
    new_first_epoch = torch.cat([b.idx[-32:] for b in batches[:plan.steps]])
    assert len(set(new_first_epoch.tolist())) == plan.steps * 32  # every sample new once
    # the resume state carries the last new half into the next epoch
    state = plan.state_dict()
    other = plans.make("overlap", DIGITS.train_y, 32, torch.Generator().manual_seed(5))
    other.load_state_dict(state)
    assert torch.equal(next(other.epoch()).idx[:32], batches[-1].idx[-32:])


def test_shuffle_plan_is_the_previous_behaviour():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    plan = plans.make("shuffle", DIGITS.train_y, 64, g1)
    perm = torch.randperm(len(DIGITS.train_y), generator=g2)
    got = torch.cat([b.idx for b in plan.epoch()])
    assert torch.equal(got, perm[:plan.steps * 64])


def test_images_forwarded_per_epoch_per_method():
    n = len(DIGITS.train_y)
    steps = n // 64
    expect = {("ce", None): (64, 0), ("drkd", "pretrained"): (64, 64), ("drkd", "ema"): (64, 64),
              ("drkd", "previous-epoch"): (64, 0), ("cs-kd", None): (128, 0),
              ("dlb", None): (128, 0)}
    teacher = train.models.build("mlp", 1, 10, 8)
    for (name, source), (student, extra) in expect.items():
        s = config.make_spec("digits", "mlp", name, 0, {"teacher": source} if source else {},
                             {"epochs": 1})
        run = train.build(s, DIGITS, CPU, teacher, amp=False, channels_last=False)
        row = train.train_epoch(run.step, DIGITS.train_x, DIGITS.train_y, run.plan)
        first = 64 if name == "dlb" else 0  # DLB's first step has no previous half
        assert row["cost_student_images"] == student * steps - first, name
        assert row["cost_teacher_images"] == extra * steps, name


def test_unknown_source_is_one_clear_error():
    import pytest
    with pytest.raises(ValueError, match="unknown teacher source 'x'; choose one of"):
        teachers.make("x", None)


def test_memory_write_with_a_repeated_index_keeps_its_last_occurrence():
    from benchmark.models.teachers import MemoryTeacher, StepView, last_occurrence

    idx = torch.tensor([3, 1, 3, 0, 1, 3])
    assert last_occurrence(idx).tolist() == [3, 4, 5]
    assert last_occurrence(torch.tensor([2, 0, 1])).tolist() == [0, 1, 2]
    teacher = MemoryTeacher(torch.tensor([0, 1, 0, 1]), 2)
    logits = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    teacher.after_step(StepView(torch.zeros(6, 1), idx, logits, 1, 0, 6))
    # sample 3 was written by rows 0, 2 and 5: row 5 wins; sample 1 by rows 1 and 4: row 4
    assert teacher.memory[3].tolist() == [10.0, 11.0]
    assert teacher.memory[1].tolist() == [8.0, 9.0]
    assert teacher.memory[0].tolist() == [6.0, 7.0]
    assert teacher.memory[2].tolist() == [0.0, float("-inf")]  # never written: its label


def test_a_teacher_that_holds_only_labels_measures_nothing_yet():
    # epoch 1 of a previous-epoch teacher is the labels themselves: its "accuracy" was 100%;
    # now the epoch has no value (no point in the figure), not 100%
    from benchmark import config, data
    from benchmark.jobs import train

    digits = data.load("digits")
    memory = config.make_spec("digits", "mlp", "drkd", 0, {"teacher": "previous-epoch"},
                              {"epochs": 2})
    first, second = train.train(memory, digits).history
    assert "diag_teacher_top1" not in first and "diag_teacher_agreement" not in first
    assert 0 < second["diag_teacher_top1"] < 1 and 0 < second["diag_teacher_agreement"] <= 1
    frozen = config.make_spec("digits", "mlp", "drkd", 0, {"teacher": "online"}, {"epochs": 1})
    (only,) = train.train(frozen, digits).history
    assert 0 < only["diag_teacher_top1"] < 1  # a teacher of its own from the first step
