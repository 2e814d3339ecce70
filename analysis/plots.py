"""The report's figures (seaborn), each written as PNG and PDF with fixed metadata so that
regenerating gives identical files."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from . import stats  # noqa: E402

PNG_META = {"Software": None}
PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}


def save(fig, folder: Path, name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    fig.savefig(png, dpi=130, bbox_inches="tight", metadata=PNG_META)
    fig.savefig(pdf, bbox_inches="tight", metadata=PDF_META)
    plt.close(fig)
    return [png, pdf]


def _theme() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    matplotlib.rcParams["svg.hashsalt"] = "drkd-bench"
    matplotlib.rcParams["pdf.compression"] = 6


def t_band(values) -> tuple[float, float]:
    """The 95% Student-t interval over seeds, the same interval as the statistics tables (a
    single seed gives a zero-width band)."""
    mean, low, high = stats.t_interval(values)
    return (mean, mean) if low != low else (low, high)


def accuracy(runs: pd.DataFrame, dataset: str, folder: Path) -> list[Path]:
    """Final-epoch test top-1 per method and architecture: mean with a 95% t-interval over
    seeds, one dot per seed."""
    _theme()
    d = runs[runs["dataset"] == dataset].copy()
    d["test top-1 (%)"] = d["final_test_top1"] * 100
    order = stats.variant_order(d["variant"])
    archs = sorted(d["arch"].unique())
    dodge = 0.4 if len(archs) > 1 else False  # seaborn divides by (hue levels - 1)
    fig, ax = plt.subplots(figsize=(1.3 + 1.1 * len(order), 4.2))
    sns.pointplot(d, x="variant", y="test top-1 (%)", hue="arch", order=order, hue_order=archs,
                  errorbar=t_band, dodge=dodge, linestyle="none", capsize=0.1, markers="D",
                  ax=ax)
    sns.stripplot(d, x="variant", y="test top-1 (%)", hue="arch", order=order, hue_order=archs,
                  dodge=dodge, alpha=0.35, size=4, ax=ax, legend=False, jitter=False)
    ax.set_title(f"{dataset}: final-epoch test top-1 (mean, 95% Student-t CI over seeds)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=25)
    return save(fig, folder, f"accuracy_{dataset}")


def curves(epochs: pd.DataFrame, dataset: str, folder: Path, metric: str = "test_top1",
           ylabel: str = "test top-1 (%)", name: str = "curves") -> list[Path]:
    """``metric`` against epoch per method (mean over seeds with a 95% band), one panel per
    architecture."""
    _theme()
    d = epochs[(epochs["dataset"] == dataset) & epochs[metric].notna()].copy()
    if d.empty:
        return []
    d[ylabel] = d[metric] * 100
    order = stats.variant_order(d["variant"])
    g = sns.relplot(d, x="epoch", y=ylabel, hue="variant", hue_order=order, col="arch",
                    col_order=sorted(d["arch"].unique()), kind="line", errorbar=t_band,
                    height=3.6, aspect=1.2, facet_kws={"sharey": False})
    g.figure.suptitle(f"{dataset}: {ylabel} per epoch (mean over seeds, 95% Student-t band)",
                      y=1.03)
    return save(g.figure, folder, f"{name}_{dataset}")


def landscape(trials: pd.DataFrame, folder: Path) -> list[Path]:
    """Validation accuracy over each Optuna study's searched hyperparameters: the first two as
    axes (or one against the accuracy), complete trials coloured by their final validation top-1,
    pruned or failed trials as grey crosses, the best a star."""
    _theme()
    fixed = {"study", "trial", "state", "value"}
    d = trials.copy()
    d["val top-1 (%)"] = d["value"] * 100
    panels = []
    for study in sorted(d["study"].unique()):
        s = d[d["study"] == study]
        axes = [c for c in s.columns if c not in fixed | {"val top-1 (%)"}
                and s[c].nunique(dropna=True) > 1]
        if axes:
            panels.append((study, s, axes[:2]))
    if not panels:
        return []
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, grid = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax, (study, s, names) in zip(grid.flat, panels):
        x = names[0]
        y = names[1] if len(names) > 1 else "val top-1 (%)"
        done = s[(s["state"] == "COMPLETE") & s["value"].notna()]
        pruned = s[s["state"] != "COMPLETE"]
        if len(names) > 1:
            ax.scatter(pruned[x], pruned[y], marker="x", s=24, c="0.6",
                       label=f"pruned or failed ({len(pruned)})")
        if len(done):
            low, high = done["val top-1 (%)"].min(), done["val top-1 (%)"].max()
            pts = ax.scatter(done[x], done[y], c=done["val top-1 (%)"], cmap="viridis",
                             vmin=min(low, high - 0.5), vmax=max(high, low + 0.5), s=40,
                             edgecolor="k", linewidth=0.3)
            best = done.loc[done["value"].idxmax()]
            ax.scatter([best[x]], [best[y]], marker="*", s=220, c="red",
                       label=f"best {best['val top-1 (%)']:.1f}%")
            fig.colorbar(pts, ax=ax, label="val top-1 (%)")
        if s[x].min() > 0 and s[x].max() / s[x].min() > 20:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(study, fontsize=9)
        ax.legend(loc="best", fontsize=8)
    for ax in list(grid.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Optuna: final validation top-1 over the searched hyperparameters")
    fig.tight_layout()
    return save(fig, folder, "tuning_landscape")
