"""Figures at the scale of the field: page-sized, no legend or title over another text, fixed
colours per method, intervals inside the metric, verdicts marked; the report page embeds every
figure and links every table."""
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analysis import plots, report, stats, tables

SOURCES = ["pretrained", "online", "previous-epoch", "ema"]


def _epochs(seeds=4, epochs=4) -> pd.DataFrame:
    """A field of 20 variants: CE, smoothing methods, a method of its own teacher, and two
    methods under four teacher sources, each also tuned; two architectures; cost records."""
    rng = np.random.default_rng(0)
    variants = [("ce", "ce", "none"), ("lsr", "lsr", "none"), ("zipf-ls", "zipf-ls", "none"),
                ("dlb", "dlb", "previous-batch")]
    variants += [(f"{m}-{s}", m, s) for m in ("tfkd-self", "drkd") for s in SOURCES]
    variants += [(v + "-tuned", m, s) for v, m, s in variants if m != "ce"]
    rows = []
    for arch, level in (("cnn8", 0.97), ("mlp", 0.9)):
        for i, (variant, method, source) in enumerate(variants):
            for seed in range(seeds):
                final = min(1.0, level + 0.004 * (i % 5) - 0.02 * (i % 3 == 2)
                            + 0.003 * rng.standard_normal())
                for e in range(1, epochs + 1):
                    rows.append({
                        "run_id": f"{arch}{variant}{seed}", "status": "FINISHED",
                        "cell_key": f"digits/{arch}/{variant}/seed{seed}", "failure_reason": "",
                        "kind": "train", "dataset": "digits", "arch": arch, "method": method,
                        "variant": variant, "seed": seed, "teacher_source": source,
                        "epoch": e, "test_top1": final - 0.01 * (epochs - e),
                        "val_top1": final, "diag_teacher_top1": 1.0 if source != "none" else None,
                        "cost_student_images": 1000.0 * (2 if method == "dlb" else 1),
                        "cost_teacher_images": 1000.0 * (source in ("pretrained", "ema"))})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def field():
    from analysis import load

    epochs = _epochs()
    runs = load.runs_from_epochs(epochs)
    return epochs, runs, tables.stats_table(runs)


def _figures(field):
    epochs, runs, st = field
    trials = pd.DataFrame({"study": ["digits/cnn8/drkd-online"] * 5 + ["digits/mlp/lsr"] * 3,
                           "trial": [0, 1, 2, 3, 4, 0, 1, 2],
                           "state": ["COMPLETE", "PRUNED", "COMPLETE", "RUNNING", "FAIL",
                                     "COMPLETE", "COMPLETE", "RUNNING"],
                           "alpha": [0.1, 0.5, 0.9, 0.3, 0.2, np.nan, np.nan, np.nan],
                           "temperature": [2, 4, 8, 3, 5, np.nan, np.nan, np.nan],
                           "smoothing": [np.nan] * 5 + [0.1, 0.2, 0.3],
                           "value": [0.9, 0.8, 0.95, 0.99, np.nan, 0.9, 0.92, 0.97]})
    return {"forest": plots.forest_figure(st, "digits", "mlp", 0.5),
            "accuracy": plots.accuracy_figure(runs, "digits"),
            "curves": plots.curves_figure(epochs, "digits"),
            "diag": plots.curves_figure(epochs[epochs["diag_teacher_top1"].notna()], "digits",
                                        "diag_teacher_top1", "teacher top1 (%)"),
            "cost": plots.cost_figure(tables.cost_points(epochs, runs, "digits"), "digits"),
            "landscape": plots.landscape_figure(trials)}


@pytest.mark.slow
def test_every_figure_fits_a_page_and_no_legend_or_title_overlaps_a_text(field, tmp_path):
    for name, fig in _figures(field).items():
        assert fig is not None, name
        assert fig.get_size_inches()[0] <= 7.25, name
        assert plots.overlaps(fig) == [], name
        png, pdf = plots.save(fig, tmp_path, name)
        with Image.open(png) as im:
            dpi = im.info["dpi"][0]
            assert im.width / dpi <= 7.25 + 1e-6, (name, im.width, dpi)
        assert pdf.read_bytes().startswith(b"%PDF")


def test_overlap_check_catches_a_legend_over_a_title():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="a line with a long label")
    ax.set_title("a title")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.12))
    assert any("legend" in a or "legend" in b for a, b in plots.overlaps(fig))
    plt.close(fig)


def test_each_method_keeps_one_colour_and_ce_is_black():
    a = plots.method_colours(["ce", "drkd", "dlb"])
    b = plots.method_colours(["dlb", "lsr", "my-method"])
    assert a["dlb"] == b["dlb"] and a["ce"] == (0.0, 0.0, 0.0)
    known = [plots.method_colours([])[m] for m in stats.METHOD_ORDER]
    assert len(set(known)) == len(known)  # no two methods share a colour
    assert b["my-method"] not in known[1:]


def test_curve_bands_stay_inside_the_metric(field):
    epochs = field[0].copy()
    epochs.loc[epochs["variant"] == "ce", "test_top1"] = [1.0, 0.99, 1.0, 0.98] * (
        (epochs["variant"] == "ce").sum() // 4)
    fig = plots.curves_figure(epochs, "digits")
    for ax in fig.axes:
        for poly in ax.collections:
            for path in poly.get_paths():
                assert path.vertices[:, 1].max() <= 100 + 1e-9
                assert path.vertices[:, 1].min() >= 0 - 1e-9


def test_forest_sorts_by_difference_and_marks_each_verdict(field):
    st = field[2]
    fig = plots.forest_figure(st, "digits", "mlp", 0.5)
    ref = st[(st["arch"] == "mlp") & (st["setting"] == "reference") & (st["baseline"] == "ce")]
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(ref.sort_values("mean_diff", kind="stable")["variant"])
    markers = [(line.get_marker(), line.get_color()) for line in ax.lines
               if line.get_marker() not in (None, "None", "")]
    expected = [plots.VERDICT_STYLE[v] for v in
                ref.sort_values("mean_diff", kind="stable")["verdict"]]
    assert markers == expected


def test_landscape_never_counts_a_running_trial_as_pruned_or_best(field):
    fig = _figures(field)["landscape"]
    ax = fig.axes[0]
    stars = [c for c in ax.collections if c.get_paths() and len(c.get_offsets()) == 1
             and c.get_sizes()[0] > 100]
    assert len(stars) == 1
    assert tuple(stars[0].get_offsets()[0]) == (0.9, 8)  # the best complete, not the 0.99 running
    hollow = [c for c in ax.collections if len(c.get_facecolors()) == 0]
    assert len(hollow) == 1 and tuple(hollow[0].get_offsets()[0]) == (0.3, 3)


@pytest.mark.slow
def test_report_page_embeds_every_figure_links_every_table_and_states_the_seeds(field,
                                                                                tmp_path):
    epochs = field[0]
    written = report.build(epochs, tmp_path, source="test")
    text = (tmp_path / "README.md").read_text()
    pngs = sorted(str(p.relative_to(tmp_path)) for p in written if p.suffix == ".png")
    assert "figures/forest_digits_cnn8.png" in pngs and "figures/accuracy_cost_digits.png" in pngs
    for png in pngs:
        assert f"]({png})" in text and text.count("![") >= len(pngs)
    for md in sorted(p for p in written if p.suffix == ".md" and p.parent.name == "tables"):
        assert f"]({md.relative_to(tmp_path)})" in text
    stated = {int(n) for n in re.findall(r"(\d+) seeds", text)}
    assert stated == {4}
    for word in ("`drkd`", "`tfkd-self`", "`dlb`", "`-tuned`", "`inconclusive`", "`MDE`"):
        assert word in text.split("## Glossary")[1]


def test_the_cost_figure_counts_images_and_measured_time():
    points = pd.DataFrame({"dataset": "d", "arch": "mlp", "variant": ["ce", "ce@2x", "dlb"],
                           "method": ["ce", "ce", "dlb"], "rel_images": [1.0, 2.0, 2.0],
                           "rel_seconds": [1.0, 1.93, 1.4], "mean": [90.0, 91.0, 90.5],
                           "low": [89.5, 90.5, 90.0], "high": [90.5, 91.5, 91.0], "n": 3})
    fig = plots.cost_figure(points, "d")
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert labels == ["images forwarded per run / ce's", "training seconds per run / ce's"]
    dlb_x = [x for ax in fig.axes[1:] for line in ax.lines for x in line.get_xdata()
             if 1.3 < x < 1.5]
    assert dlb_x  # DLB drawn at its measured time, not at its images
    no_time = plots.cost_figure(points.drop(columns="rel_seconds"), "d")
    assert len(no_time.axes) == 1


def _points_of(ax) -> list[tuple[str, str, tuple, float, float]]:
    """Every single point an axes draws: (marker, face colour, edge colour, x, y)."""
    import matplotlib.colors as mc

    out = []
    for line in ax.lines:
        xs, ys = line.get_xdata(), line.get_ydata()
        if line.get_marker() in (None, "None", "", " ", "_", "|") or len(xs) != 1:
            continue  # lines, and an error bar's caps
        out.append((line.get_marker(), mc.to_hex(line.get_markerfacecolor()),
                    mc.to_hex(line.get_color()), float(xs[0]), float(ys[0])))
    return out


def test_a_method_and_its_control_and_ce_and_its_budget_are_told_apart_in_the_cost_figure():
    points = pd.DataFrame({
        "dataset": "d", "arch": "mlp",
        "variant": ["ce", "ce@2x", "ce-tuned", "dlb", "dlb-control", "cs-kd", "cs-kd-control",
                    "lsr"],
        "method": ["ce", "ce", "ce", "dlb", "dlb", "cs-kd", "cs-kd", "lsr"],
        "rel_images": [1.0, 2.0, 1.0, 2.0, 2.0, 2.0, 2.0, 1.0],
        "rel_seconds": [1.0, 1.9, 1.0, 1.5, 1.4, 1.6, 1.6, 1.0],
        "mean": [90.0, 91.0, 90.4, 90.5, 90.4, 90.2, 90.1, 70.0],  # lsr far below: a ▼
        "low": [89.5, 90.5, 90.0, 90.0, 90.0, 89.8, 89.7, 69.0],
        "high": [90.5, 91.5, 90.8, 91.0, 90.8, 90.6, 90.5, 71.0], "n": 3})
    fig = plots.cost_figure(points, "d")
    for ax in fig.axes:
        drawn = _points_of(ax)
        by_colour: dict[str, set] = {}
        for marker, face, edge, x, y in drawn:
            by_colour.setdefault(edge, set()).add((marker, face))
            (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
            assert x0 <= x <= x1 and y0 <= y <= y1, (marker, x, y, ax.get_ylim())
        # dlb and its control share dlb's colour: their markers differ (and so for cs-kd, and
        # for ce, ce@2x and ce-tuned)
        colours = plots.method_colours(["ce", "dlb", "cs-kd", "lsr"])
        import matplotlib.colors as mc
        for method, roles in (("dlb", 2), ("cs-kd", 2), ("ce", 3)):
            assert len(by_colour[mc.to_hex(colours[method])]) == roles, (method, by_colour)
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert len(dashed) == 1  # ce's budgets, and only they: ce-tuned is not on the line
        assert sorted(dashed[0].get_xdata()) in ([1.0, 2.0], [1.0, 1.9])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"mechanism control", "tuned", "baseline budget", "ce at its epoch budgets"} \
        <= set(labels)


def test_curves_tell_a_control_and_a_budget_by_line_style_and_tick_whole_epochs():
    rows = [{"run_id": f"{v}{s}", "kind": "train", "status": "FINISHED", "dataset": "d",
             "arch": "mlp", "variant": v, "method": m, "teacher_source": "none", "seed": s,
             "epoch": e, "test_top1": 0.8 + 0.01 * e}
            for v, m in (("ce", "ce"), ("ce@2x", "ce"), ("dlb", "dlb"), ("dlb-control", "dlb"))
            for s in range(2) for e in range(1, 6)]
    fig = plots.curves_figure(pd.DataFrame(rows), "d")
    styles = {}
    for ax in fig.axes:
        for line in ax.lines:
            if len(line.get_xdata()) > 1:
                styles.setdefault(line.get_color() if isinstance(line.get_color(), str)
                                  else tuple(line.get_color()), set()).add(line.get_linestyle())
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert all(float(t).is_integer() for t in ticks), ticks
    assert all(len(s) == 2 for s in styles.values()), styles  # ce vs ce@2x; dlb vs its control


def _lattice_rows(alphas, temps):
    rows = []
    for arch in ("cnn28s", "mlp"):
        for source in ("online", "pretrained"):
            for a in alphas:
                for t in temps:
                    rows.append({"dataset": "d", "arch": arch, "teacher_source": source,
                                 "alpha": a, "temperature": t,
                                 "variant": f"drkd-{source}-a{a:g}-T{t:g}",
                                 "baseline": f"tfkd-self-{source}-a{a:g}-T{t:g}",
                                 "mean_diff": 0.3, "ci_low": 0.1, "ci_high": 0.5,
                                 "n_pairs": 15, "verdict": "better", "teacher_error": 5.0})
    return pd.DataFrame(rows)


def test_a_one_point_lattice_is_a_forest_strip_and_a_grid_a_heat_map():
    import matplotlib.image

    one = plots.lattice_figure(_lattice_rows([0.95], [6]), "d")
    assert not any(isinstance(a, matplotlib.image.AxesImage) for ax in one.axes
                   for a in ax.get_children())
    assert [t.get_text() for t in one.axes[0].get_yticklabels()] == ["online", "pretrained"]
    means = [line.get_xdata()[0] for ax in one.axes for line in ax.lines
             if line.get_marker() == "^"]
    assert means == [0.3] * 4  # 2 architectures x 2 sources, each its own point
    grid = plots.lattice_figure(_lattice_rows([0.5, 0.9], [2, 4]), "d")
    assert any(isinstance(a, matplotlib.image.AxesImage) for ax in grid.axes
               for a in ax.get_children())


def _look(handle) -> tuple:
    """What a reader sees of a legend entry: colour, line pattern, width, marker and its fill."""
    from matplotlib import colors

    if hasattr(handle, "get_linestyle") and hasattr(handle, "get_marker"):
        return ("line", colors.to_hex(handle.get_color()), str(handle.get_dashes()
                if hasattr(handle, "get_dashes") else handle.get_linestyle()),
                handle.get_linestyle(), round(handle.get_linewidth(), 2), str(handle.get_marker()),
                str(handle.get_markerfacecolor()))
    return (type(handle).__name__, str(getattr(handle, "get_facecolor", lambda: "")()))


def test_no_figure_is_taller_than_3000_px_nor_has_two_legend_entries_that_look_alike(field):
    for name, fig in _figures(field).items():
        assert fig.get_size_inches()[1] * plots.DPI <= 3000, name
        for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
            looks = [_look(h) for h in legend.legend_handles]
            texts = [t.get_text() for t in legend.get_texts()]
            same = [t for t, look in zip(texts, looks) if looks.count(look) > 1]
            assert not same, (name, same)


def test_the_tuned_forest_has_a_panel_per_baseline_kind_and_a_row_per_comparison():
    rows = []
    for task in ("digits:clean", "digits:sym40"):
        for variant, baseline, verdict, fragile in (
                ("drkd-online-tuned", "ce-tuned", "worse", False),
                ("tfkd-self-online-tuned", "ce-tuned", "equivalent", True),
                ("drkd-online-tuned", "tfkd-self-online-tuned", "better", False)):
            rows.append({"dataset": task, "arch": "mlp", "setting": "tuned", "variant": variant,
                         "baseline": baseline, "n_pairs": 20, "mean_diff": 0.1, "ci_low": -0.2,
                         "ci_high": 0.4, "verdict": verdict, "fragile": fragile})
    rows.append({**rows[0], "setting": "reference", "variant": "lsr", "baseline": "ce"})
    fig = plots.tuned_figure(pd.DataFrame(rows), 0.5)
    top, bottom = fig.axes[:2]
    assert top.get_title(loc="left") == "− tuned ce"
    assert bottom.get_title(loc="left") == "− tuned tfkd-self of the same teacher"
    assert [t.get_text() for t in top.get_yticklabels()] == [
        "digits:clean mlp: drkd-online", "digits:clean mlp: tfkd-self-online",
        "digits:sym40 mlp: drkd-online", "digits:sym40 mlp: tfkd-self-online"]
    assert len(bottom.get_yticklabels()) == 2
    points = [line for line in top.get_lines() if line.get_marker() not in ("None", None, "")]
    assert [p.get_marker() for p in points] == ["v", "D", "v", "D"]  # worse, equivalent
    assert [p.get_markerfacecolor() == "white" for p in points] == [False, True, False, True]
    assert plots.tuned_figure(pd.DataFrame(rows[-1:]), 0.5) is None  # no tuned-vs-tuned pair


def test_the_budget_figure_has_a_panel_per_task_and_a_point_per_budget(tmp_path):
    rows = []
    for task in ("digits:clean", "digits:sym40"):
        for epochs, verdict in ((30, "worse"), (60, "inconclusive"), (120, "equivalent")):
            for variant, baseline in (("drkd-online-tuned", "ce-tuned"),
                                      ("drkd-online-tuned", "tfkd-self-online-tuned")):
                rows.append({"epochs": epochs, "dataset": task, "arch": "mlp",
                             "variant": variant, "baseline": baseline, "mean_diff": -0.3,
                             "ci_low": -0.5, "ci_high": -0.1, "ci_low_total": -0.9,
                             "ci_high_total": 0.3, "verdict": verdict})
    fig = plots.budget_figure(pd.DataFrame(rows), 0.5)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["digits:clean / mlp", "digits:sym40 / mlp"]
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["30", "60", "120"]
    markers = [line.get_marker() for line in panels[0].get_lines()
               if line.get_marker() not in ("None", None, "")]
    assert sorted(markers) == sorted(["v", "o", "D"] * 2)  # each budget's verdict, 2 lines
    bars = [line for line in panels[0].get_lines() if len(line.get_xdata()) == 2
            and line.get_xdata()[0] == line.get_xdata()[1]]
    assert {tuple(b.get_ydata()) for b in bars} == {(-0.9, 0.3)}  # the verdict's interval
    assert plots.overlaps(fig) == []
    paths = plots.budget(pd.DataFrame(rows), tmp_path, 0.5)
    assert paths[0].name == "answer_budget.png" and paths[0].stat().st_size > 1000
    marked = plots.budget_figure(pd.DataFrame(rows), 0.5, {("digits:clean", "mlp"): 120})
    panels = [ax for ax in marked.axes if ax.get_visible()]
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["30", "60",
                                                                    "120\n(its budget)"]
    assert [t.get_text() for t in panels[1].get_xticklabels()] == ["30", "60", "120"]
    assert plots.overlaps(marked) == []
    # a task trained only below its ladder's budget (240), or whose ladder names none
    short = plots.budget_figure(pd.DataFrame(rows), 0.5, {("digits:clean", "mlp"): 240,
                                                          ("digits:sym40", "mlp"): None})
    for panel in [ax for ax in short.axes if ax.get_visible()]:
        assert [t.get_text() for t in panel.get_xticklabels()] == [
            f"{e}\n(short of convergence)" for e in (30, 60, 120)]


def test_the_ladder_figure_draws_each_rungs_mean_and_the_budget_the_rule_names(tmp_path):
    """Two tasks, 3 seeds a rung: each rung's mean over seeds (in per cent) for validation and
    test, a t-interval over the seeds, the seeds counted in the title, a line at the named
    budget; at most 3,000 px tall, no two legend entries alike, nothing over a title."""
    import itertools

    rows = []
    for (task, arch), e, seed in itertools.product((("digits:clean", "mlp"),
                                                    ("digits:sym40", "cnn8")),
                                                   (30, 60, 120), (0, 1, 2)):
        rows.append({"dataset": task, "arch": arch, "epochs": e, "seed": seed,
                     "final_val_top1": 0.5 + e / 1000 + seed / 100,
                     "final_test_top1": 0.9 - e / 1000})
    runs = pd.DataFrame(rows)
    budgets = pd.DataFrame([{"dataset": "digits:clean", "arch": "mlp", "budget": 60},
                            {"dataset": "digits:sym40", "arch": "cnn8", "budget": "none"}])
    fig = plots.ladder_figure(runs, budgets)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["digits:clean / mlp (3 seeds a rung)",
                                                 "digits:sym40 / cnn8 (3 seeds a rung)"]
    val = [line for line in panels[0].get_lines() if line.get_marker() == "o"][0]
    assert list(val.get_xdata()) == [30, 60, 120]
    assert np.allclose(val.get_ydata(), [100 * (0.5 + e / 1000 + 0.01) for e in (30, 60, 120)])
    budget_lines = [line for ax in panels for line in ax.get_lines()
                    if line.get_linestyle() == ":"]
    assert len(budget_lines) == 1 and list(budget_lines[0].get_xdata()) == [60, 60]
    assert fig.get_size_inches()[1] * plots.DPI <= 3000 and plots.overlaps(fig) == []
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(set(texts)) == len(texts) == 3
    paths = plots.ladder(runs, budgets, tmp_path)
    assert paths[0].name == "ladder.png" and paths[0].stat().st_size > 1000
