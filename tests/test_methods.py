"""Every loss against an independent computation (explicit per-sample loops in float64), the
rectification invariants, the KL conventions and the registry's validation."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import methods
from benchmark.data import plans
from benchmark.models import teachers
from methods.drkd import rectify
from methods.functional import kl_divergence
from methods.tfkd import virtual_teacher

SHAPES = [(1, 2), (4, 3), (7, 10), (16, 100)]


def _softmax(row, t=1.0):
    e = np.exp((row - row.max()) / t)
    return e / e.sum()


def _ce(z, y):
    return float(np.mean([-math.log(_softmax(r)[c]) for r, c in zip(z, y)]))


def _kl(p, q):  # sum_k p_k (log p_k - log q_k), 0 log 0 = 0
    return float(sum(pk * (math.log(pk) - math.log(qk)) for pk, qk in zip(p, q) if pk > 0))


def _kd(z, y, zt, alpha, t, reduction="batchmean", m=1.0):
    k = z.shape[1]
    kl = np.mean([_kl(_softmax(b, t), _softmax(a, t)) for a, b in zip(z, zt)])
    if reduction == "elementwise":
        kl /= k
    return (1 - alpha) * _ce(z, y) + alpha * t * t * m * kl


def _rectify(zt, y):
    out = zt.copy()
    for i, (row, c) in enumerate(zip(zt, y)):
        top = int(np.argmax(row))
        if row[c] < row[top]:
            out[i, top], out[i, c] = row[c], row[top]
    return out


def _data(shape, seed, ties=False):
    g = torch.Generator().manual_seed(seed)
    n, k = shape
    z = torch.randn(n, k, generator=g, dtype=torch.float64) * 3
    zt = torch.randn(n, k, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, k, (n,), generator=g)
    if ties:  # ties at the maximum, some involving the true class
        zt = torch.round(zt)
        zt[0] = 1.0
        if n > 2:
            zt[2, y[2]] = zt[2].max()
    return z, y, zt


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ties", [False, True])
def test_losses_equal_independent_computation(shape, ties):
    z, y, zt = _data(shape, seed=sum(shape), ties=ties)
    zn, yn, ztn = z.numpy(), y.numpy(), zt.numpy()
    k = shape[1]
    get = methods.get
    assert get("ce").loss(z, y).item() == pytest.approx(_ce(zn, yn), abs=1e-6)

    eps = 0.2
    q = np.full((len(yn), k), eps / (k - 1)) if k > 1 else np.zeros((len(yn), k))
    q[np.arange(len(yn)), yn] = 1 - eps
    lsr = np.mean([-(qi * np.log(_softmax(zi))).sum() for qi, zi in zip(q, zn)])
    assert get("lsr").loss(z, y, smoothing=eps).item() == pytest.approx(lsr, abs=1e-6)

    for red, m in (("batchmean", 1.0), ("elementwise", 50.0)):
        expect = _kd(zn, yn, ztn, 0.7, 4.0, red, m)
        got = get("tfkd-self").loss(z, y, zt, alpha=0.7, temperature=4.0, kl_reduction=red,
                                    multiplier=m)
        assert got.item() == pytest.approx(expect, abs=1e-6)
        expect = _kd(zn, yn, _rectify(ztn, yn), 0.7, 4.0, red, m)
        for source in ("pretrained", "online"):
            got = get("drkd").loss(z, y, zt, alpha=0.7, temperature=4.0, kl_reduction=red,
                                   multiplier=m, teacher=source)
            assert got.item() == pytest.approx(expect, abs=1e-6)

    a, tau, alpha = 0.99, 20.0, 0.3
    for scale in (False, True):
        pd_ = np.full((len(yn), k), (1 - a) / (k - 1))
        pd_[np.arange(len(yn)), yn] = a
        kl = np.mean([_kl(_softmax(p, tau), _softmax(zi, tau if scale else 1.0))
                      for p, zi in zip(pd_, zn)])
        expect = (1 - alpha) * _ce(zn, yn) + alpha * kl
        got = get("tfkd-reg").loss(z, y, alpha=alpha, temperature=tau, correct_prob=a,
                                   scale_student=scale)
        assert got.item() == pytest.approx(expect, abs=1e-6)


def test_code_preset_is_elementwise_and_equals_batchmean_over_k():
    z, y, zt = _data((8, 100), 3)
    m = methods.get("tfkd-self")
    assert m.resolve({"fidelity": "code"})["kl_reduction"] == "elementwise"
    assert methods.get("tfkd-reg").resolve({"fidelity": "code"})["scale_student"] is False
    assert methods.get("tfkd-reg").resolve({"fidelity": "paper"})["scale_student"] is True
    # multiplier 100 with K = 100 reproduces batchmean (docs/methods.md)
    code = m.loss(z, y, zt, fidelity="code", multiplier=100)
    paper = m.loss(z, y, zt, fidelity="paper")
    assert code.item() == pytest.approx(paper.item(), abs=1e-9)
    # an explicit option beats the preset
    assert m.resolve({"fidelity": "code", "kl_reduction": "batchmean"})["kl_reduction"] == \
        "batchmean"


@given(n=st.integers(1, 20), k=st.integers(1, 50), seed=st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_elementwise_kl_times_k_equals_batchmean(n, k, seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64), 1)
    logq = torch.log_softmax(torch.randn(n, k, generator=g, dtype=torch.float64), 1)
    assert (kl_divergence(p, logq, "elementwise") * k).item() == pytest.approx(
        kl_divergence(p, logq, "batchmean").item(), rel=1e-12, abs=1e-12)
    # and elementwise equals PyTorch's nn.KLDivLoss() default, the reference code's call
    ref = torch.nn.KLDivLoss()(logq, p)
    assert kl_divergence(p, logq, "elementwise").item() == pytest.approx(ref.item(), abs=1e-12)


logit_rows = st.integers(1, 12).flatmap(lambda k: st.tuples(
    st.just(k),
    st.lists(st.lists(st.integers(-4, 4), min_size=k, max_size=k), min_size=1, max_size=16),
))


@given(data=logit_rows, labels=st.data())
@settings(max_examples=200, deadline=None)
def test_rectify_invariants(data, labels):
    k, rows = data
    logits = torch.tensor(rows, dtype=torch.float32) / 2  # small integers: many ties
    y = torch.tensor(labels.draw(st.lists(st.integers(0, k - 1), min_size=len(rows),
                                          max_size=len(rows))))
    before = logits.clone()
    out, swapped = rectify(logits, y)
    assert torch.equal(logits, before)  # input unchanged
    assert out.data_ptr() != logits.data_ptr()
    for i in range(len(rows)):
        row, new = logits[i], out[i]
        assert sorted(row.tolist()) == sorted(new.tolist())  # same multiset
        assert int((row != new).sum()) <= 2  # at most two entries changed
        assert new[y[i]] == new.max()  # true class ranked first (ties allowed)
        correct = bool(row[y[i]] == row.max())
        assert bool(swapped[i]) == (not correct)
        if correct:
            assert torch.equal(row, new)  # correct rows (ties included) untouched
        else:
            assert new[y[i]] == row.max() and new[row.argmax()] == row[y[i]]


def test_online_teacher_shares_storage_and_is_not_modified():
    z = torch.randn(6, 5, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    teacher = z.detach()  # the online teacher: same storage as the student's logits
    snapshot = teacher.clone()
    loss = methods.get("drkd").loss(z, y, teacher, teacher="online")
    loss.backward()
    assert torch.equal(teacher, snapshot)
    assert z.grad is not None and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", ["tfkd-self", "drkd"])
def test_no_gradient_reaches_the_teacher(name):
    z = torch.randn(4, 6, requires_grad=True)
    zt = torch.randn(4, 6, requires_grad=True)
    y = torch.tensor([1, 2, 3, 4])
    methods.get(name).loss(z, y, zt).backward()
    assert zt.grad is None
    assert z.grad is not None


def test_online_kd_gradient_is_zero_for_correct_samples():
    z = torch.tensor([[3.0, 0.0, -1.0]], dtype=torch.float64, requires_grad=True)  # right, y=0
    y = torch.tensor([0])
    terms = methods.get("drkd").terms(z, y, z.detach(), alpha=1.0, temperature=4.0)
    terms["loss"].backward()
    assert torch.allclose(z.grad, torch.zeros_like(z), atol=1e-12)
    assert terms["rectified"].item() == 0.0


def test_drkd_diagnostics():
    zt = torch.tensor([[0.0, 2.0, 1.0], [5.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    y = torch.tensor([0, 0, 1, 0])  # wrong, right, tie (right), wrong
    terms = methods.get("drkd").terms(torch.zeros(4, 3), y, zt)  # noqa: E501
    assert terms["rectified"].item() == pytest.approx(0.5)
    assert set(terms) == {"loss", "ce", "kd", "rectified", "events"}
    assert set(methods.get("drkd").diagnostics) == {"rectified"}


def test_virtual_teacher_is_nearly_uniform_with_reference_values():
    t = virtual_teacher(torch.tensor([0]), 100, 0.99, 20.0, torch.float64)[0]
    expect_true = math.exp(0.99 / 20) / (math.exp(0.99 / 20) + 99 * math.exp(0.01 / 99 / 20))
    assert t[0].item() == pytest.approx(expect_true, abs=1e-12)
    assert t[0].item() == pytest.approx(0.0105, abs=5e-5)
    assert t[1].item() == pytest.approx(0.0100, abs=5e-5)
    assert t.sum().item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", methods.names())
def test_every_registered_method_resolves_and_gives_a_finite_loss(name):
    m = methods.get(name)
    hp = m.resolve({})
    assert set(hp) == set(m.params)
    z, y, zt = _data((5, 7), 1)
    # a method that takes features gets a 2x2 map of 7 channels and a head that reads it
    extra = ({"features": torch.randn(5, 7, 2, 2), "head": lambda f: f.mean(dim=(2, 3))}
             if m.wants_features(hp) else {})
    loss = m.loss(z.float(), y, zt.float(), **extra)
    assert loss.ndim == 0 and torch.isfinite(loss)
    for key, p in m.search_space().items():
        assert p.low < p.high and m.resolve({key: p.low})[key] == p.low
    assert m.teacher_source() == "none" or m.teacher_source() in teachers.SOURCES
    assert m.batch_plan in plans.PLANS
    assert set(m.diagnostics) <= set(m.terms(z.float(), y, zt.float(), **m.loss_kwargs(hp),
                                             **extra))
    if name not in ("ce", "lsr", "tfkd-self", "tfkd-reg", "drkd"):  # the field's methods
        assert m.source and "@" in m.source, "name the official code followed"


def test_registry_lists_the_methods_and_their_teachers():
    assert methods.names() == ["ce", "lsr", "tfkd-self", "tfkd-reg", "drkd", "ps-kd", "cs-kd",
                               "zipf-ls", "dlb"]
    assert methods.get("ps-kd").teacher_source() == "previous-epoch"
    assert methods.get("cs-kd").batch_plan == "class-paired"
    assert methods.get("dlb").batch_plan == "overlap"
    assert methods.get("tfkd-self").teacher_source() == "pretrained"
    assert methods.get("drkd").teacher_source({"teacher": "online"}) == "online"
    assert methods.get("drkd").teacher_source() == "pretrained"
    assert methods.get("ce").teacher_source() == "none"
    assert {"alpha", "temperature"} <= set(methods.get("drkd").search_space())
    assert methods.get("drkd").search_space()["temperature"].log


@pytest.mark.parametrize("name,hp,needle", [
    ("drkd", {"alpha": 1.5}, "[0, 1]"),
    ("drkd", {"alpha": -0.1}, "[0, 1]"),
    ("tfkd-self", {"temperature": 0}, "(0, inf)"),
    ("tfkd-self", {"temperature": -2}, "(0, inf)"),
    ("lsr", {"smoothing": 1.0}, "[0, 1)"),
    ("lsr", {"smoothing": -0.1}, "[0, 1)"),
    ("tfkd-reg", {"correct_prob": 0.0}, "(0, 1]"),
    ("tfkd-reg", {"correct_prob": 1.2}, "(0, 1]"),
    ("drkd", {"teacher": "oracle"}, "pretrained, online"),
    ("drkd", {"fidelity": "exact"}, "paper, code"),
    ("drkd", {"kl_reduction": "sum"}, "batchmean, elementwise"),
    ("drkd", {"temp": 3}, "alpha, temperature"),
    ("ce", {"alpha": 0.5}, "(none)"),
    ("drkd", {"alpha": "high"}, "not a number"),
])
def test_invalid_hyperparameters_raise_one_clear_error(name, hp, needle):
    with pytest.raises(methods.MethodError) as e:
        methods.get(name).resolve(hp)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_unknown_method_names_the_choices():
    with pytest.raises(methods.MethodError, match="ce, lsr, tfkd-self, tfkd-reg, drkd"):
        methods.get("kd")
    with pytest.raises(methods.MethodError, match="already registered"):
        methods.register(methods.get("ce"))


def test_boundary_values_are_accepted():
    assert methods.get("drkd").resolve({"alpha": 0})["alpha"] == 0
    assert methods.get("drkd").resolve({"alpha": 1})["alpha"] == 1
    assert methods.get("lsr").resolve({"smoothing": 0})["smoothing"] == 0
    assert methods.get("tfkd-reg").resolve({"correct_prob": 1})["correct_prob"] == 1


# --- the teacher-free field: each loss against a loop written here ------------------------------

def _soft_ce(q, z):
    return float(np.mean([-(qi * np.log(_softmax(zi))).sum() for qi, zi in zip(q, z)]))


@pytest.mark.parametrize("shape", SHAPES)
def test_field_losses_equal_independent_computation(shape):
    z, y, zt = _data(shape, seed=7 * sum(shape))
    zn, yn, ztn = z.numpy(), y.numpy(), zt.numpy()
    n, k = shape
    get = methods.get

    # PS-KD: soft CE to (1 - a) onehot + a softmax(teacher); a is this epoch's a_t
    onehot = np.eye(k)[yn]
    q = 0.7 * onehot + 0.3 * np.stack([_softmax(r) for r in ztn])
    assert get("ps-kd").terms(z, y, zt, alpha=0.3)["loss"].item() == \
        pytest.approx(_soft_ce(q, zn), abs=1e-6)
    # ... and the ramp: a_t = a_T * t / E
    m = get("ps-kd")
    assert m.loss_kwargs(m.resolve({}), 3, 12)["alpha"] == pytest.approx(0.8 * 3 / 12)
    assert m.loss_kwargs(m.resolve({}), 12, 12)["alpha"] == pytest.approx(0.8)

    # CS-KD: CE(anchor) + lam T^2 KL(p_T(partner) || p_T(anchor))
    t, lam = 4.0, 1.5
    kl = np.mean([_kl(_softmax(b, t), _softmax(a, t)) for a, b in zip(zn, ztn)])
    expect = _ce(zn, yn) + lam * t * t * kl
    assert get("cs-kd").loss(z, y, zt, temperature=t, lam=lam).item() == \
        pytest.approx(expect, abs=1e-6)

    # DLB: CE over all rows + alpha T^2 KL on the first len(teacher) rows
    t, alpha, m_rows = 3.0, 0.5, max(1, n // 2)
    kl = np.mean([_kl(_softmax(b, t), _softmax(a, t)) for a, b in zip(zn[:m_rows], ztn[:m_rows])])
    expect = _ce(zn, yn) + alpha * t * t * kl
    got = get("dlb").loss(z, y, zt[:m_rows], temperature=t, alpha=alpha)
    assert got.item() == pytest.approx(expect, abs=1e-6)
    assert get("dlb").loss(z, y, zt[:0]).item() == pytest.approx(_ce(zn, yn), abs=1e-9)

    # Zipf's LS: CE + lam KL(zipf over non-targets by rank || softmax over non-target logits)
    if k > 2:
        lam, p = 0.4, 1.3
        total = 0.0
        for row, c in zip(zn, yn):
            ranks = np.array([1 + sum(row[j] > row[i] for j in range(k)) for i in range(k)])
            others = [i for i in range(k) if i != c]
            w = np.array([ranks[i] ** -p for i in others])
            w /= w.sum()
            total += _kl(w, _softmax(row[others]))
        expect = _ce(zn, yn) + lam * total / n
        got = get("zipf-ls").loss(z, y, lam=lam, power=p, fidelity="code")
        assert got.item() == pytest.approx(expect, abs=1e-6)


def test_zipf_ranks_ties_share_the_smallest_rank_and_gradients_are_finite():
    from methods.zipfls import zipf_targets
    z = torch.tensor([[3.0, 1.0, 1.0, 0.0]], requires_grad=True)
    q = zipf_targets(z, torch.tensor([0]))
    # ranks 1, 2, 2, 4: non-targets weigh 1/2, 1/2, 1/4
    assert torch.allclose(q, torch.tensor([[0.0, 0.4, 0.4, 0.2]]))
    methods.get("zipf-ls").loss(z, torch.tensor([0]), fidelity="code").backward()
    assert torch.isfinite(z.grad).all()


# Golden values from the official functions at megvii-research/zipfls@108e27a,
# pytorch_zipfls/losses.py: zipf_loss (l. 150-155) -> gen_pdf (l. 225-296, dense=True: the
# scatter_add of ones over the positions' arg-max classes, then rankdata(-votes, 'min')) ->
# get_masked_distribution (l. 158-205, 'rank_zipf', with_target=False) -> kl_loss (l. 130-147),
# run on the CPU on these tensors (.cuda() made a no-op).
OFFICIAL_LOGITS = [[2.0, 1.0, 0.5, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                   [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]
OFFICIAL_LABELS = [0, 5, 2]
OFFICIAL_DENSE_ARGMAX = [[0, 0, 3, 1], [5, 4, 4, 4], [2, 2, 2, 2]]  # 4 positions per sample
OFFICIAL_DENSE_PDF = [[0.2857142984867096, 0.1428571492433548, 0.2857142984867096,
                       0.1428571492433548, 0.1428571492433548],
                      [0.1428571492433548, 0.1428571492433548, 0.1428571492433548,
                       0.1428571492433548, 0.4285714328289032],
                      [0.2] * 5]
OFFICIAL_LOGIT_PDF = [[0.32608696818351746, 0.21739129722118378, 0.21739129722118378,
                       0.10869564861059189, 0.1304347813129425],
                      [0.1149425283074379, 0.13793103396892548, 0.17241379618644714,
                       0.2298850566148758, 0.3448275923728943], [0.2] * 5]
OFFICIAL_KL = {("dense", 1.0): 0.05983005091547966, ("logits", 1.0): 0.0209402684122324,
               ("dense", 2.0): 0.18737541139125824}


def _official_case():
    z = torch.tensor(OFFICIAL_LOGITS)
    y = torch.tensor(OFFICIAL_LABELS)
    # a 2x2 map of one-hot channels whose arg-max at each position is the official dense arg-max,
    # read by a head that is the identity on each position's channels
    winners = torch.tensor(OFFICIAL_DENSE_ARGMAX)
    features = F.one_hot(winners, 6).float().reshape(3, 2, 2, 6).permute(0, 3, 1, 2)
    return z, y, features, (lambda f: f.mean(dim=(2, 3)))


def test_zipf_dense_votes_and_targets_match_the_official_code():
    from methods.zipfls import dense_votes, zipf_targets

    z, y, features, head = _official_case()
    votes = dense_votes(features, head, 6, upsample="none")
    assert votes.tolist() == [[2, 1, 0, 1, 0, 0], [0, 0, 0, 0, 3, 1], [0, 0, 4, 0, 0, 0]]
    for scores, official in ((votes, OFFICIAL_DENSE_PDF), (z, OFFICIAL_LOGIT_PDF)):
        q = zipf_targets(scores, y)
        off_target = q[F.one_hot(y, 6) == 0].reshape(3, 5)
        assert torch.allclose(off_target, torch.tensor(official), atol=1e-7)


@pytest.mark.parametrize("recipe,power", [("dense", 1.0), ("logits", 1.0), ("dense", 2.0)])
def test_zipf_kd_term_matches_the_official_code(recipe, power):
    from methods.zipfls import zipf_ls_terms

    z, y, features, head = _official_case()
    terms = zipf_ls_terms(z, y, lam=1.0, power=power, dense=recipe == "dense", upsample="none",
                          features=features, head=head)
    assert terms["kd"].item() == pytest.approx(OFFICIAL_KL[(recipe, power)], abs=1e-6)


def test_zipf_presets_pick_the_recipe_and_only_dense_takes_features():
    m = methods.get("zipf-ls")
    assert m.resolve({})["dense"] is True and m.resolve({})["upsample"] == "bilinear"
    assert m.resolve({"fidelity": "code"})["dense"] is False
    assert m.wants_features(m.resolve({})) and not m.wants_features(m.resolve({"fidelity": "code"}))
    assert not any(methods.get(n).wants_features(methods.get(n).resolve({}))
                   for n in methods.names() if n != "zipf-ls")


def test_drkd_equals_tfkd_self_when_the_teacher_is_right_everywhere():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(16, 10, generator=g, dtype=torch.float64)
    zt = torch.randn(16, 10, generator=g, dtype=torch.float64)
    y = zt.argmax(1)  # the teacher is right on every sample
    grads = []
    for name in ("tfkd-self", "drkd"):
        zz = z.clone().requires_grad_(True)
        m = methods.get(name)
        loss = m.terms(zz, y, zt, **m.loss_kwargs(m.resolve({"teacher": "ema"})))["loss"]
        loss.backward()
        grads.append((loss.detach(), zz.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])
    # and the two declare the same hyperparameters apart from nothing
    assert set(methods.get("drkd").params) == set(methods.get("tfkd-self").params)


@pytest.mark.parametrize("name", methods.names())
def test_every_method_rejects_unknown_and_out_of_range_values(name):
    m = methods.get(name)
    with pytest.raises(methods.MethodError, match="has no hyperparameter 'nope'"):
        m.resolve({"nope": 1})
    for key, p in m.search_space().items():
        if p.valid.startswith(("[0", "(0")):
            with pytest.raises(methods.MethodError, match="must lie in"):
                m.resolve({key: -1.0})
