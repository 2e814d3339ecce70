"""Your own data: a folder of class subfolders or an ``.npz`` file, checked and described
(statistics, content digest) when loaded."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.catalog import Arrays, Augment, DataError, DatasetSpec
from benchmark.data.splits import stratified_indices

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
