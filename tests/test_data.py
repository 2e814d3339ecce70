"""Loaders read fixtures written in each dataset's real on-disk format; splits and batch
augmentation behave as documented."""
import gzip
import math
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark import data


def write_idx(path, array, gz):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def make_fashion(folder, n_train=60, n_test=20, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"train_x": rng.integers(0, 256, (n_train, 28, 28)),
              "train_y": np.arange(n_train) % 10,
              "test_x": rng.integers(0, 256, (n_test, 28, 28)),
              "test_y": (np.arange(n_test) * 3) % 10}
    for key, stem in data.FASHION_FILES.items():
        write_idx(folder / stem, arrays[key], gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path, gz, monkeypatch):
    monkeypatch.delenv("DRKD_DATA", raising=False)
    arrays = make_fashion(tmp_path / "FashionMNIST" / "raw", gz=gz)
    tx, ty, sx, sy = data.load_fashion_mnist(tmp_path)
    assert tx.shape == (60, 1, 28, 28) and tx.dtype == np.uint8
    np.testing.assert_array_equal(tx[:, 0], arrays["train_x"])
    np.testing.assert_array_equal(sy, arrays["test_y"])
    assert ty.dtype == np.int64


def test_truncated_idx_file_is_a_data_error(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x01\x02")
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(path)


def write_cifar(root, name):
    rng = np.random.default_rng(1)
    if name == "cifar10":
        base = root / "cifar-10-batches-py"
        base.mkdir(parents=True)
        files, key = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels"
    else:
        base = root / "cifar-100-python"
        base.mkdir(parents=True)
        files, key = ["train", "test"], b"fine_labels"
    written = {}
    for i, f in enumerate(files):
        x = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)
        y = [(i * 4 + j) % (10 if name == "cifar10" else 100) for j in range(4)]
        with open(base / f, "wb") as fh:
            pickle.dump({b"data": x, key: y, b"batch_label": b"x"}, fh)
        written[f] = (x, y)
    return written


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reads_the_python_pickles(tmp_path, name):
    written = write_cifar(tmp_path, name)
    loader = data.load_cifar10 if name == "cifar10" else data.load_cifar100
    tx, ty, sx, sy = loader(tmp_path)
    n_train = 20 if name == "cifar10" else 4
    assert tx.shape == (n_train, 3, 32, 32) and sx.shape == (4, 3, 32, 32)
    first = "data_batch_1" if name == "cifar10" else "train"
    np.testing.assert_array_equal(tx[0].reshape(-1), written[first][0][0])
    last = "test_batch" if name == "cifar10" else "test"
    assert sy.tolist() == written[last][1]


def write_tiny_imagenet(root, wnids=("n02", "n01", "n03"), per_class=2):
    base = root / "tiny-imagenet-200"
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    colours = {}
    for w_i, w in enumerate(wnids):
        folder = base / "train" / w / "images"
        folder.mkdir(parents=True)
        for j in range(per_class):
            colour = (40 * w_i + 10, 7 * j, 200)
            Image.new("RGB", (64, 64), colour).save(folder / f"{w}_{j}.JPEG", quality=100)
    lines = []
    for i, w in enumerate(["n03", "n01", "n02", "n01"]):
        Image.new("RGB", (64, 64), (i * 50, 0, 0)).save(base / "val" / "images" /
                                                        f"val_{i}.JPEG", quality=100)
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
        colours[i] = w
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return colours


def test_tiny_imagenet_labels_val_from_annotations(tmp_path):
    write_tiny_imagenet(tmp_path)
    tx, ty, sx, sy = data.load_tiny_imagenet(tmp_path)
    # wnids sorted: n01 -> 0, n02 -> 1, n03 -> 2; val labels from val_annotations.txt
    assert sy.tolist() == [2, 0, 1, 0]
    assert ty.tolist() == [0, 0, 1, 1, 2, 2]
    assert tx.shape == (6, 3, 64, 64) and sx.shape == (4, 3, 64, 64)
    assert abs(int(sx[1, 0].mean()) - 50) <= 2  # image content read, in annotation order
    # the second load comes from the cache and is identical
    again = data.load_tiny_imagenet(tmp_path)
    np.testing.assert_array_equal(again[3], sy)


@pytest.mark.parametrize("name", ["fashion-mnist", "cifar10", "cifar100", "tiny-imagenet"])
def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path, name, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DRKD_DATA", raising=False)
    monkeypatch.setattr(data.builtin, "DEBIAN_FASHION", tmp_path / "no-debian-package")
    with pytest.raises(data.DataError) as e:
        data.load(name, tmp_path / "nowhere")
    text = str(e.value)
    assert str(tmp_path / "nowhere") in text and "\n" not in text
    assert ("apt-get" in text) or ("download" in text)


def test_stratified_split_keeps_class_proportions():
    y = np.repeat(np.arange(5), [10, 20, 30, 40, 50])
    idx = data.stratified_indices(y, 0.1, seed=3)
    assert np.bincount(y[idx]).tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(idx, data.stratified_indices(y, 0.1, seed=3))


def test_digits_splits_are_disjoint_and_fixed():
    d = data.load("digits", val_fraction=0.2, split_seed=1)
    assert len(d.train_y) + len(d.val_y) + len(d.test_y) == 1797
    assert d.train_x.dtype == torch.uint8 and d.image_shape == (1, 8, 8)
    counts = torch.bincount(d.val_y, minlength=10)
    assert counts.min() >= 25
    again = data.load("digits", val_fraction=0.2, split_seed=1)
    assert torch.equal(d.val_x, again.val_x)
    other = data.load("digits", val_fraction=0.2, split_seed=2)
    assert not torch.equal(d.val_x, other.val_x)
    assert torch.equal(d.test_x, other.test_x)  # the test split never depends on the split seed


def test_train_subset_is_stratified():
    full = data.load("digits")
    d = data.load("digits", train_subset=500)
    total = len(d.train_y) + len(d.val_y)
    assert abs(total - 500) <= 5  # per-class rounding
    share = torch.bincount(torch.cat([d.train_y, d.val_y]), minlength=10) / total
    full_share = torch.bincount(torch.cat([full.train_y, full.val_y]), minlength=10) / (
        len(full.train_y) + len(full.val_y))
    assert (share - full_share).abs().max() < 0.01


def reference_augment(x, a, generator):
    """The three torchvision-style steps applied in turn, per image, with plain loops and the
    same random draws as the harness (crop offsets, flips, angles)."""
    n, c, h, w = x.shape
    p = a.crop_padding
    if p:
        oy = torch.randint(0, 2 * p + 1, (n, 1, 1), generator=generator).flatten().tolist()
        ox = torch.randint(0, 2 * p + 1, (n, 1, 1), generator=generator).flatten().tolist()
    if a.flip:
        flips = (torch.rand(n, generator=generator) < 0.5).tolist()
    if a.rotation:
        angles = ((torch.rand(n, generator=generator) * 2 - 1) * math.radians(a.rotation)).tolist()
    out = []
    for i in range(n):
        img = x[i]
        if p:
            img = torch.nn.functional.pad(img, (p, p, p, p))[:, oy[i]:oy[i] + h, ox[i]:ox[i] + w]
        if a.flip and flips[i]:
            img = img.flip(2)
        if a.rotation:
            rot = torch.zeros_like(img)
            cos, sin = math.cos(angles[i]), math.sin(angles[i])
            cx, cy = (w - 1) / 2, (h - 1) / 2
            for r in range(h):
                for col in range(w):
                    sx = round(cos * (col - cx) - sin * (r - cy) + cx)
                    sy = round(sin * (col - cx) + cos * (r - cy) + cy)
                    if 0 <= sx < w and 0 <= sy < h:
                        rot[:, r, col] = img[:, sy, sx]
            img = rot
        out.append(img)
    return torch.stack(out)


@pytest.mark.parametrize("augment", [data.Augment(crop_padding=2), data.Augment(flip=True),
                                     data.Augment(rotation=30),
                                     data.Augment(crop_padding=3, flip=True, rotation=20)],
                         ids=["crop", "flip", "rotation", "all"])
def test_one_gather_equals_crop_flip_rotation_in_turn(augment):
    x = torch.randint(1, 256, (6, 3, 9, 9), dtype=torch.uint8)
    got = data.augment(x, augment, torch.Generator().manual_seed(7))
    expect = reference_augment(x, augment, torch.Generator().manual_seed(7))
    assert got.dtype == torch.uint8 and torch.equal(got, expect)


def test_rotation_identity_centre_and_zero_fill():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.uint8).view(2, 1, 5, 5)
    tiny = data.augment(x, data.Augment(rotation=1e-6), torch.Generator().manual_seed(0))
    assert torch.equal(tiny, x)
    corner = data.augment(torch.full((64, 1, 9, 9), 200, dtype=torch.uint8),
                          data.Augment(rotation=45), torch.Generator().manual_seed(1))
    assert (corner[:, 0, 0, 0] == 0).any() and (corner[:, 0, 4, 4] == 200).all()


def test_pipeline_normalises():
    d = data.load("digits")
    p = data.Pipeline(d)
    full = p.normalize(d.train_x)
    assert abs(full.mean().item()) < 0.05 and abs(full.std().item() - 1) < 0.05
    a = p.train(d.train_x[:16], torch.Generator().manual_seed(1))
    b = p.train(d.train_x[:16], torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == torch.float32 and a.shape == (16, 1, 8, 8)


def test_per_seed_split_draws_a_new_validation_split_per_seed_and_keeps_old_hashes(tmp_path):
    from benchmark import config
    from benchmark.jobs import grid, runner

    text = config.resolve_config_path("quick").read_text()
    fixed = grid.expand(config.load_grid("quick"))
    path = tmp_path / "per-seed.yaml"
    path.write_text(text.replace("    val_fraction: 0.1", "    val_fraction: 0.1\n"
                                                         "    split: per-seed"))
    per_seed = grid.expand(config.load_grid(str(path)))
    by_key = {c.key: c for c in fixed}
    for cell in per_seed:
        assert cell.data.split == "per-seed" and cell.data.split_seed == cell.seed
        assert cell.hash != by_key[cell.key].hash  # in the hash only when set
        assert "split" not in by_key[cell.key].identity()["data"]
        teacher = cell.teacher_spec()
        if teacher is not None:  # a pretrained teacher saw the same split as its student
            assert teacher.data == cell.data
    seed0 = next(c for c in per_seed if c.seed == 0)
    seed1 = next(c for c in per_seed if c.seed == 1)
    a, b = runner.load_data(seed0.data, None), runner.load_data(seed1.data, None)
    assert not torch.equal(a.val_x, b.val_x) and torch.equal(a.test_x, b.test_x)
    assert runner.load_data(by_key[seed1.key].data, None).val_x.equal(a.val_x)  # fixed: one split
    path.write_text(text.replace("    val_fraction: 0.1", "    val_fraction: 0.1\n"
                                                         "    split: sometimes"))
    with pytest.raises(config.ConfigError, match="split must be one of: fixed, per-seed"):
        config.load_grid(str(path))


def test_digits_are_scikit_learns_read_without_importing_it():
    """The embedded digits come from scikit-learn's own CSV, read as its loader reads it (the
    same arrays, split for split), without the 1.2 s import of scikit-learn in every process."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits as sk_digits

    from benchmark.data import builtin
    from benchmark.data.splits import stratified_indices

    d = sk_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    test = stratified_indices(y, 0.25, seed=0)
    train = np.setdiff1d(np.arange(len(y)), test)
    for got, want in zip(builtin.load_digits(), (x[train], y[train], x[test], y[test])):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    code = ("import sys; from benchmark.data import builtin; builtin.load_digits(); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
