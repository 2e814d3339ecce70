"""The shipped datasets, each read from its real on-disk format: digits (embedded),
Fashion-MNIST (IDX), CIFAR-10/100 (python pickles), Tiny ImageNet (JPEG folders)."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from benchmark.data.catalog import (
    Arrays,
    Augment,
    DataError,
    DatasetSpec,
    _missing,
    data_roots,
    register,
)
from benchmark.data.splits import stratified_indices


def _digits_table() -> np.ndarray:
    """scikit-learn's ``digits.csv.gz`` (1,797 rows: 64 pixels, then the label) read as its
    ``load_digits`` reads it (``np.loadtxt``, comma-separated), found without importing
    scikit-learn: that import cost 1.2 s in every process that loaded digits (a grid's command
    and each of its workers). Where the file is not found, scikit-learn's own loader."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, mode="rt", encoding="utf-8") as f:
                return np.loadtxt(f, delimiter=",")
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    return np.column_stack([d.data, d.target])


def load_digits(root: Path | None = None) -> Arrays:
    """scikit-learn's bundled 8x8 digits (values 0..16, scaled to 0..255). It has no official
    split: a fixed stratified 25% test split (seed 0) is used."""
    table = _digits_table()
    images = table[:, :-1].reshape(-1, 8, 8)
    x = np.round(images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = table[:, -1].astype(int).astype(np.int64)
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
