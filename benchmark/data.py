"""Datasets as uint8 tensors held whole in memory, a stratified validation split carved from the
training set, and augmentation done a batch at a time on the training device.

Every loader reads the dataset's real on-disk format; a missing file raises :class:`DataError`
with one line saying where the harness looked and how to get the data.
"""
from __future__ import annotations

import gzip
import math
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydantic
import torch


class DataError(RuntimeError):
    """A dataset that cannot be found or read (one line, no traceback at the CLI)."""


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # train x, y, test x, y (NCHW)


@pydantic.dataclasses.dataclass(frozen=True, config=pydantic.ConfigDict(
    extra="forbid", allow_inf_nan=False))  # not strict itself: a mapping in a config is one
class Augment:
    """Batch augmentation: random crop with zero padding, horizontal flip, rotation in degrees."""

    crop_padding: int = pydantic.Field(0, ge=0, strict=True, description="random crop after "
                                       "zero padding by this many pixels (0: none)")
    flip: bool = pydantic.Field(False, strict=True, description="random horizontal flip")
    rotation: float = pydantic.Field(0.0, ge=0, strict=True, description="random rotation up "
                                     "to this many degrees")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    load: Callable[[Path | None], Arrays]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment
    default_arch: str
    source: str


_DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _DATASETS:
        raise DataError(f"dataset {spec.name!r} is already registered")
    _DATASETS[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    try:
        return _DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(names())}") from None


def names() -> list[str]:
    return list(_DATASETS)


def data_roots(root: str | Path | None) -> list[Path]:
    """Where datasets are looked for: the given root, ``$DRKD_DATA``, then the user cache."""
    roots = [Path(root).expanduser()] if root else []
    if os.environ.get("DRKD_DATA"):
        roots.append(Path(os.environ["DRKD_DATA"]).expanduser())
    roots.append(Path.home() / ".cache" / "drkd-bench" / "data")
    return roots


def _missing(name: str, looked: list[Path], how: str) -> DataError:
    places = ", ".join(str(p) for p in looked)
    return DataError(f"{name}: files not found (looked in {places}); {how}")


# --- digits -------------------------------------------------------------------------------------

def load_digits(root: Path | None = None) -> Arrays:
    """scikit-learn's bundled 8x8 digits (values 0..16, scaled to 0..255). It has no official
    split: a fixed stratified 25% test split (seed 0) is used."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    test = stratified_indices(y, 0.25, seed=0)
    train = np.setdiff1d(np.arange(len(y)), test)
    return x[train], y[train], x[test], y[test]


# --- Fashion-MNIST ------------------------------------------------------------------------------

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist
FASHION_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
                 "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not): magic (0, 0, dtype 0x08, ndim), big-endian dims, data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile, a truncated gzip stream
        raise DataError(f"{path}: not a readable IDX file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes; {ndim} dimensions "
                        f"need {4 + 4 * ndim}); get the file again")
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({data.size} of {int(np.prod(dims))} bytes)")
    return data.reshape(tuple(dims)).copy()


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist(root: Path | None = None) -> Arrays:
    folders = []
    for r in data_roots(root):
        folders += [r, r / "fashion-mnist", r / "FashionMNIST" / "raw"]
    folders.append(DEBIAN_FASHION)
    for folder in folders:
        found = {k: _find_idx(folder, stem) for k, stem in FASHION_FILES.items()}
        if all(found.values()):
            arr = {k: read_idx(p) for k, p in found.items()}
            for x, y in (("train_x", "train_y"), ("test_x", "test_y")):
                if len(arr[x]) != len(arr[y]):
                    raise DataError(f"{found[x]}: {len(arr[x])} images but {found[y].name} has "
                                    f"{len(arr[y])} labels; the files do not belong together")
            return (arr["train_x"][:, None], arr["train_y"].astype(np.int64),
                    arr["test_x"][:, None], arr["test_y"].astype(np.int64))
    raise _missing("fashion-mnist", folders,
                   "on Debian: apt-get install dataset-fashion-mnist; elsewhere: "
                   "drkd-bench download fashion-mnist --data-root DIR")


# --- CIFAR --------------------------------------------------------------------------------------

class _CifarUnpickler(pickle.Unpickler):
    """CIFAR's python pickles hold a dict of bytes, lists and numpy arrays: only numpy's array
    reconstruction may be looked up, so a crafted file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"forbidden object {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    """A CIFAR batch file: a dict with ``b"data"`` (N x 3072 uint8) and its labels."""
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, OSError) as e:
        raise DataError(f"{path}: not a CIFAR python batch ({e})") from None
    if not isinstance(batch, dict) or b"data" not in batch:
        raise DataError(f"{path}: not a CIFAR python batch (no b'data' entry)")
    return batch


def _cifar(root: Path | None, folder: str, train_files: list[str], test_file: str,
           label_key: bytes, name: str) -> Arrays:
    looked = [r / folder for r in data_roots(root)]
    for base in looked:
        if all((base / f).is_file() for f in [*train_files, test_file]):
            def read(files: list[str], base: Path = base) -> tuple[np.ndarray, np.ndarray]:
                parts = [_unpickle(base / f) for f in files]
                try:
                    x = np.concatenate([p[b"data"] for p in parts]).reshape(-1, 3, 32, 32)
                    y = np.concatenate([np.asarray(p[label_key]) for p in parts])
                except (KeyError, ValueError) as e:
                    raise DataError(f"{base}: malformed CIFAR batch ({type(e).__name__}: "
                                    f"{e})") from None
                if len(x) != len(y):
                    raise DataError(f"{base}: {len(x)} images but {len(y)} labels")
                return x.astype(np.uint8), y.astype(np.int64)
            return (*read(train_files), *read([test_file]))
    raise _missing(name, looked, "download the python version with torchvision: "
                                 f"drkd-bench download {name} --data-root DIR")


def load_cifar10(root: Path | None = None) -> Arrays:
    return _cifar(root, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                  "test_batch", b"labels", "cifar10")


def load_cifar100(root: Path | None = None) -> Arrays:
    return _cifar(root, "cifar-100-python", ["train"], "test", b"fine_labels", "cifar100")


# --- Tiny ImageNet ------------------------------------------------------------------------------

def load_tiny_imagenet(root: Path | None = None) -> Arrays:
    """The standard ``tiny-imagenet-200`` layout. Labels are indices into ``wnids.txt`` (sorted);
    the validation images (used as the test set: the official test labels are not public) are
    labelled from ``val/val_annotations.txt``, never by ``ImageFolder`` on ``val/images``."""
    looked = [r / "tiny-imagenet-200" for r in data_roots(root)]
    for base in looked:
        if (base / "wnids.txt").is_file() and not (base / "val" / "val_annotations.txt").is_file():
            raise DataError(f"{base / 'val' / 'val_annotations.txt'}: missing; it labels the "
                            "validation images (unzip tiny-imagenet-200.zip whole)")
        if (base / "wnids.txt").is_file():
            cache = base / "drkd-cache.npz"
            if cache.is_file():
                z = np.load(cache)
                return z["train_x"], z["train_y"], z["test_x"], z["test_y"]
            wnids = sorted(base.joinpath("wnids.txt").read_text().split())
            index = {w: i for i, w in enumerate(wnids)}
            train_files, train_y = [], []
            for w in wnids:
                for p in sorted((base / "train" / w / "images").glob("*.JPEG")):
                    train_files.append(p)
                    train_y.append(index[w])
            test_files, test_y = [], []
            annotations = base / "val" / "val_annotations.txt"
            for n, line in enumerate(annotations.read_text().splitlines(), 1):
                parts = line.split("\t")
                if len(parts) < 2 or parts[1] not in index:
                    raise DataError(f"{annotations}:{n}: expected 'file<TAB>wnid ...' with a "
                                    "wnid of wnids.txt")
                test_files.append(base / "val" / "images" / parts[0])
                test_y.append(index[parts[1]])
            arrays = (_read_images(train_files), np.asarray(train_y, np.int64),
                      _read_images(test_files), np.asarray(test_y, np.int64))
            try:
                np.savez(cache, train_x=arrays[0], train_y=arrays[1], test_x=arrays[2],
                         test_y=arrays[3])
            except OSError:
                pass
            return arrays
    raise _missing("tiny-imagenet", looked,
                   "download tiny-imagenet-200.zip (cs231n.stanford.edu) and unzip it there")


def _read_images(paths: list[Path]) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(paths), 3, 64, 64), np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                out[i] = np.asarray(im.convert("RGB").resize((64, 64))).transpose(2, 0, 1)
        except (OSError, ValueError, Image.DecompressionBombError) as e:  # missing, truncated,
            # not an image, or over PIL's size limit
            raise DataError(f"{p}: not a readable image ({e})") from None
    return out


# --- your own data: a folder of class subfolders, or an .npz file -------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
USER_KINDS = ("folder", "npz")


def _class_folders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_folder_split(path: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images, labels, shape, first = [], [], None, None
    for label, name in enumerate(classes):
        folder = path / name
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) \
            if folder.is_dir() else []
        for f in files:
            try:
                with Image.open(f) as im:
                    im.load()
                    mode = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
                    arr = np.asarray(im.convert(mode))
            except Image.DecompressionBombError as e:  # PIL's size limit: refused, not read
                raise DataError(f"{f}: larger than PIL's image size limit ({e})") from None
            except (OSError, ValueError) as e:
                raise DataError(f"{f}: not a readable image ({e})") from None
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
            if shape is None:
                shape, first = arr.shape, f
            elif arr.shape[1:] != shape[1:]:
                raise DataError(f"{f}: {arr.shape[2]}x{arr.shape[1]} pixels, but {first} is "
                                f"{shape[2]}x{shape[1]}; give every image one size")
            images.append(arr)
            labels.append(label)
    if not images:
        raise DataError(f"{path}: no images in its class subfolders ({', '.join(classes)}); "
                        f"expected {', '.join(IMAGE_SUFFIXES)} files")
    channels = max(a.shape[0] for a in images)  # a grey image among colour ones: as RGB
    x = np.stack([np.repeat(a, channels, 0) if a.shape[0] != channels else a for a in images])
    return x.astype(np.uint8), np.asarray(labels, np.int64)


def load_folder(path: Path) -> Arrays:
    """``path/<class>/*.png`` (any PIL format; classes sorted by folder name), or
    ``path/train/<class>/...`` and ``path/test/<class>/...``. Without ``train``/``test`` a fixed
    stratified 25% of each class (seed 0) is the test split, as for digits."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: no such folder")
    split = (path / "train").is_dir() and (path / "test").is_dir()
    classes = [c.name for c in _class_folders(path / "train" if split else path)]
    if not classes:
        raise DataError(f"{path}: no class subfolders; expected {path}/<class>/<image> files")
    if len(classes) < 2:
        raise DataError(f"{path}: one class subfolder ({classes[0]}); a classifier needs at "
                        "least two")
    if split:
        tx, ty = _read_folder_split(path / "train", classes)
        sx, sy = _read_folder_split(path / "test", classes)
        return tx, ty, sx, sy
    x, y = _read_folder_split(path, classes)
    test = stratified_indices(y, 0.25, seed=0)
    train = np.setdiff1d(np.arange(len(y)), test)
    return x[train], y[train], x[test], y[test]


def load_npz(path: Path) -> Arrays:
    """An ``.npz`` with ``x_train, y_train, x_test, y_test``: uint8 images as N x H x W
    (grey), N x H x W x C or N x C x H x W (C = 1 or 3), integer labels 0..K-1."""
    import zipfile

    path = Path(path).expanduser()
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: a single array (.npy), not an .npz archive of x_train, "
                            "y_train, x_test, y_test (np.savez)")
        arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from None
    except KeyError as e:
        raise DataError(f"{path}: missing array {e}; expected x_train, y_train, x_test, "
                        "y_test") from None
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y):
            raise DataError(f"{path}: x_{split} has {len(x)} images but y_{split} has {len(y)} "
                            "labels")
        if x.dtype != np.uint8:
            raise DataError(f"{path}: x_{split} is {x.dtype}; expected uint8 pixels (0..255)")
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise DataError(f"{path}: x_{split} has shape {x.shape}; expected N x H x W, "
                            "N x H x W x C or N x C x H x W with C = 1 or 3")
        if y.ndim != 1:
            raise DataError(f"{path}: y_{split} has shape {y.shape}; expected one integer label "
                            "per image (N,)")
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
            raise DataError(f"{path}: y_{split} must hold integer labels 0..K-1")
        if len(y) and y.max() >= MAX_CLASSES:
            raise DataError(f"{path}: y_{split} holds the label {int(y.max())}; labels are class "
                            f"indices 0..K-1 with K <= {MAX_CLASSES:,}")
        out += [np.ascontiguousarray(x), y.astype(np.int64)]
    return tuple(out)  # type: ignore[return-value]


MAX_CLASSES = 100_000


def channel_stats(x: np.ndarray, chunk: int = 4096) -> tuple[tuple[float, ...],
                                                              tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) in [0, 1], rounded to 4 digits,
    computed ``chunk`` images at a time with float64 sums: memory stays near the data's size
    (one float64 copy of the whole set cost 8x it, and its intermediate results more)."""
    c = x.shape[1]
    total, squares, count = np.zeros(c), np.zeros(c), 0
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].astype(np.float32) / 255.0
        total += part.sum(axis=(0, 2, 3), dtype=np.float64)
        squares += np.square(part, dtype=np.float32).sum(axis=(0, 2, 3), dtype=np.float64)
        count += part.shape[0] * part.shape[2] * part.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    return (tuple(round(float(v), 4) for v in mean),
            tuple(round(float(max(v, 1e-3)), 4) for v in std))


def content_digest(arrays: Arrays) -> str:
    """sha256 (16 hex digits) of the four arrays' shapes and bytes."""
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def user_dataset(name: str, kind: str, path: str | Path) -> tuple[DatasetSpec, str]:
    """A dataset read from the user's ``folder`` or ``npz`` at ``path``: its spec (classes,
    per-channel mean and std of the training set only, no augmentation, default arch
    ``cnn28s``) and its content digest. Bad files: one :class:`DataError` naming the file."""
    if kind not in USER_KINDS:
        raise DataError(f"dataset {name!r}: kind {kind!r} is not valid; choose one of: "
                        + ", ".join(USER_KINDS))
    arrays = (load_folder if kind == "folder" else load_npz)(Path(path))
    tx, ty, sx, sy = arrays
    if len(ty) == 0:
        raise DataError(f"{path}: no training images")
    if tx.shape[1:] != sx.shape[1:]:
        raise DataError(f"{path}: training images are {tx.shape[1:]} but test images "
                        f"{sx.shape[1:]}")
    classes = int(max(ty.max(), sy.max() if len(sy) else 0)) + 1
    if len(np.unique(ty)) < 2:
        raise DataError(f"{path}: the training images hold one class; a classifier needs at "
                        "least two")
    mean, std = channel_stats(tx)
    digest = content_digest(arrays)
    spec = DatasetSpec(name, lambda root=None, a=arrays: a, classes, mean, std, Augment(),
                       "cnn28s", f"{kind} {Path(path)} (content sha256 {digest}); mean/std of "
                                 f"its {len(ty)} training images")
    return spec, digest


# The statistics below are per-channel mean and std of the training images in [0, 1].
register(DatasetSpec("digits", load_digits, 10, (0.3053,), (0.3759,),
                     Augment(crop_padding=1), "cnn8",
                     "scikit-learn load_digits; mean/std computed on all 1797 images"))
register(DatasetSpec("fashion-mnist", load_fashion_mnist, 10, (0.2860,), (0.3530,),
                     Augment(crop_padding=2, flip=True), "cnn28",
                     "Xiao et al. 2017; mean/std of the 60k training images"))
register(DatasetSpec("cifar10", load_cifar10, 10, (0.4914, 0.4822, 0.4465),
                     (0.2470, 0.2435, 0.2616), Augment(crop_padding=4, flip=True, rotation=15),
                     "resnet18", "CIFAR-10's own statistics (the Tf-KD code wrongly used "
                                 "CIFAR-100's); augmentation as Tf-KD configs"))
register(DatasetSpec("cifar100", load_cifar100, 100, (0.5071, 0.4865, 0.4409),
                     (0.2673, 0.2564, 0.2762), Augment(crop_padding=4, flip=True, rotation=15),
                     "resnet18", "docs/methods.md: Tf-KD code statistics and augmentation"))
register(DatasetSpec("tiny-imagenet", load_tiny_imagenet, 200, (0.4802, 0.4481, 0.3975),
                     (0.2302, 0.2265, 0.2262), Augment(flip=True, rotation=20),
                     "resnet18", "docs/methods.md: Tf-KD code statistics and augmentation"))


# --- splits and tensors -------------------------------------------------------------------------

def stratified_indices(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a stratified sample holding ``round(fraction * n_c)`` of each class."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        take = int(round(fraction * len(idx)))
        chosen.append(rng.permutation(idx)[:take])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def check_split(name: str, labels: np.ndarray, val_fraction: float) -> None:
    """Every class keeps at least one validation and one training image, else one line naming
    the class and the smallest fraction that works."""
    classes, counts = np.unique(labels, return_counts=True)
    for c, n in zip(classes, counts):
        take = int(round(val_fraction * n))
        if take < 1 or take >= n:
            side = "no validation image" if take < 1 else "no training image"
            low, high = 0.5 / n, 1 - 0.5 / n
            raise DataError(f"{name}: val_fraction {val_fraction:g} leaves class {c} ({n} "
                            f"training images) with {side}; use a value in "
                            f"[{low:.3g}, {high:.3g}] or a larger train_subset")


@dataclass
class TensorData:
    """A dataset on one device: uint8 images (N, C, H, W) and int64 labels per split."""

    name: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor | None = field(repr=False)  # None for tuning: no test split at all
    test_y: torch.Tensor | None = field(repr=False)
    #: Which training / validation labels label noise changed (None: clean labels).
    train_noisy: torch.Tensor | None = field(default=None, repr=False)
    val_noisy: torch.Tensor | None = field(default=None, repr=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> TensorData:
        moved = {k: None if getattr(self, k) is None else getattr(self, k).to(device) for k in
                 ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y", "train_noisy",
                  "val_noisy")}
        return TensorData(self.name, self.num_classes, self.mean, self.std, self.augment, **moved)


def load(name: str, root: str | Path | None = None, val_fraction: float = 0.1,
         split_seed: int = 0, train_subset: int | None = None,
         augment: Augment | None = None, noise: Noise | None = None) -> TensorData:
    """Load ``name`` whole; carve a stratified validation split (``split_seed``) from the
    training set, after an optional stratified training subset of ``train_subset`` images. The
    split is drawn on the clean labels, so a noisy condition trains on the very images of the
    clean one; then ``noise`` corrupts the training and the validation labels (never the test
    labels)."""
    spec = get_spec(name)
    tx, ty, sx, sy = spec.load(Path(root) if root else None)
    if train_subset and train_subset < len(ty):
        keep = stratified_indices(ty, train_subset / len(ty), seed=split_seed + 1)
        tx, ty = tx[keep], ty[keep]
    check_split(name, ty, val_fraction)
    val = stratified_indices(ty, val_fraction, seed=split_seed)
    train = np.setdiff1d(np.arange(len(ty)), val)
    train_y, val_y = ty[train], ty[val]
    train_noisy = val_noisy = None
    if noise is not None and noise.kind != "none":
        train_y, val_y = noise.apply(train_y, val_y, spec.num_classes)
        train_noisy, val_noisy = (torch.from_numpy(train_y != ty[train]),
                                  torch.from_numpy(val_y != ty[val]))
    as_t = torch.from_numpy
    return TensorData(spec.name, spec.num_classes, spec.mean, spec.std, augment or spec.augment,
                      as_t(np.ascontiguousarray(tx[train])), as_t(train_y),
                      as_t(np.ascontiguousarray(tx[val])), as_t(val_y),
                      as_t(np.ascontiguousarray(sx)), as_t(sy), train_noisy, val_noisy)


# --- label noise --------------------------------------------------------------------------------

NOISE_KINDS = ("none", "symmetric", "pair")

#: What the harness measures on every run with noisy labels (``diag_<name>``, per epoch).
NOISE_DIAGNOSTICS = {
    "memorised": "share of the noisy-labelled training samples of the epoch that the student, "
                 "in its training forward, predicts as their given (wrong) label",
}


@dataclass(frozen=True)
class Noise:
    """Label noise: ``symmetric`` replaces a label by a class drawn uniformly from the K - 1
    others; ``pair`` flips class c to c + 1 (mod K), the pair-flip noise of Han et al.
    (Co-teaching, NeurIPS 2018). Exactly ``round(rate * n_c)`` labels of each class c of each
    split are changed, the samples drawn without replacement from ``seed``."""

    kind: str = "none"
    rate: float = 0.0
    seed: int = 0

    def corrupt(self, labels: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
        out = labels.copy()
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            chosen = np.sort(rng.permutation(idx)[:int(round(self.rate * len(idx)))])
            if self.kind == "pair":
                out[chosen] = (c + 1) % classes
            else:  # symmetric: an offset of 1..K-1 is a uniform draw among the other classes
                out[chosen] = (c + rng.integers(1, classes, size=len(chosen))) % classes
        return out

    def apply(self, train_y: np.ndarray, val_y: np.ndarray, classes: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """The noisy training and validation labels (the training split's drawn first)."""
        if classes < 2:
            raise DataError("label noise needs at least two classes")
        rng = np.random.default_rng([self.seed, 0x6E6F697365])  # "noise": its own stream
        return self.corrupt(train_y, classes, rng), self.corrupt(val_y, classes, rng)


# --- batched augmentation -----------------------------------------------------------------------

class Pipeline:
    """uint8 batches to normalised float batches on the batch's device, augmentation optional.

    Crop, flip and rotation (nearest, zero fill, as torchvision's ``RandomRotation``) are index
    operations on the uint8 batch; normalisation is one fused multiply-add at the end.
    """

    def __init__(self, data: TensorData, channels_last: bool = False):
        device = data.train_x.device
        c = data.train_x.shape[1]
        self.scale = (1.0 / (255.0 * torch.tensor(data.std, device=device))).view(1, c, 1, 1)
        self.shift = (-torch.tensor(data.mean, device=device) / torch.tensor(
            data.std, device=device)).view(1, c, 1, 1)
        self.augment = data.augment
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addcmul(self.shift, x.float(), self.scale)
        return out.contiguous(memory_format=self.memory_format)

    def train(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        a = self.augment
        if a.crop_padding or a.flip or a.rotation:
            x = augment(x, a, generator)
        return self.normalize(x)


def augment(x: torch.Tensor, a: Augment, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding, then horizontal flip, then rotation (nearest neighbour,
    zero fill: torchvision's ``RandomCrop(padding)``, ``RandomHorizontalFlip``,
    ``RandomRotation`` defaults), composed into one gather on the uint8 batch.

    Each output pixel follows the three maps backwards to the input pixel it shows: the inverse
    rotation (rounded to the nearest pixel), the flip, the crop offset; a pixel that lands
    outside the rotated or the padded image is 0, exactly as the three steps applied in turn.
    Random draws per batch, in order: crop offsets (y, x), flips, angles.
    """
    n, c, h, w = x.shape
    dev = x.device
    p = a.crop_padding
    if p:
        oy = torch.randint(0, 2 * p + 1, (n, 1, 1), device=dev, generator=generator) - p
        ox = torch.randint(0, 2 * p + 1, (n, 1, 1), device=dev, generator=generator) - p
    if a.flip:
        flip = (torch.rand(n, device=dev, generator=generator) < 0.5).view(n, 1, 1)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    inside = None
    if a.rotation:
        angle = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * math.radians(a.rotation)
        cos, sin = angle.cos().view(n, 1, 1), angle.sin().view(n, 1, 1)
        dx, dy = xs - (w - 1) / 2, ys - (h - 1) / 2
        xs = torch.round(cos * dx - sin * dy + (w - 1) / 2).long()
        ys = torch.round(sin * dx + cos * dy + (h - 1) / 2).long()
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    if a.flip:
        xs = torch.where(flip, w - 1 - xs, xs)
    if p:
        xs, ys = xs + ox, ys + oy
        in_crop = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        inside = in_crop if inside is None else inside & in_crop
    index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).expand(n, h, w).reshape(n, 1, h * w)
    out = x.reshape(n, c, h * w).gather(2, index.expand(n, c, h * w)).view(n, c, h, w)
    if inside is not None:
        out = out * inside.view(n, 1, h, w).to(out.dtype)
    return out
