"""What a study is: one per (dataset, arch, method variant) of a config, named
``dataset/arch/label``, its search space (the method registry's ``Param.low/high/log``,
optionally narrowed by ``tune.space``), its seeds and budget; where studies are stored (a
journal file under ``results/`` by default, or any RDB URL); and the values a grid's tuned
variant reads from its study."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

import methods
from benchmark.config import (
    OPTIMISER_PARAMS,
    RESERVED_SEEDS,
    ConfigError,
    GridConfig,
    RunSpec,
    Variant,
    variant_spec,
)
from benchmark.jobs.tune.choice import chosen_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


def default_storage(results: Path | str = "results") -> str:
    return str((Path(results) / "optuna.journal").resolve())


def open_storage(url: str | None, results: Path | str = "results"):
    """Optuna storage for ``url``: an RDB URL or a journal file path; a URL that cannot be
    opened is one :class:`ConfigError` line."""
    url = url or default_storage(results)
    try:
        if "://" in url:
            kwargs: dict[str, Any] = {}
            if url.startswith("sqlite"):
                kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(3),
                **kwargs)
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(
            url, lock_obj=optuna.storages.journal.JournalFileOpenLock(url))
        return optuna.storages.JournalStorage(backend)
    except Exception as e:  # noqa: BLE001 - SQLAlchemy's and Optuna's many errors: one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"Optuna storage {redact(url)!r} cannot be opened: {first}") from None


def redact(url: str) -> str:
    """``url`` without its password (for messages and tags)."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        auth, host = rest.rsplit("@", 1)
        return f"{scheme}://{auth.split(':', 1)[0]}:***@{host}" if ":" in auth else url
    return url


def study_name(dataset: str, arch: str, variant: Variant) -> str:
    """``dataset/arch/label``: one study per grid variant (two variants of one method that differ
    in anything, a fidelity preset say, never share a study). A variant that reads its values
    from the study (``hyperparameters: tuned``) names it without its ``-tuned`` suffix."""
    label = variant.label.removesuffix("-tuned") if variant.tuned else variant.label
    return f"{dataset}/{arch}/{label}"


#: The optimiser's search space (``config.OPTIMISER_PARAMS``) as (low, high, log).
OPTIMISER_SPACE = {k: (p.low, p.high, p.log) for k, p in OPTIMISER_PARAMS.items()}


@dataclass(frozen=True)
class Study:
    name: str
    spec: RunSpec  # the variant's fixed settings; trials override the searched hyperparameters
    space: dict[str, tuple[float, float, bool]]  # name -> (low, high, log)
    teacher: RunSpec | None = None  # the grid's CE cell that is the self-teacher, if any
    #: Each trial trains these seeds and scores the mean of their validation top-1.
    seeds: tuple[int, ...] = (0,)
    #: The study's own trial count under a budget in images (None: the command's ``--trials``).
    trials: int | None = None
    images_per_trial: float = 0.0  # relative to one epoch of the training set (CE's epoch = 1)
    pruning: bool = True
    rescore: int = 0  # fresh seeds the winner is trained on after the study
    #: k-fold cross-validation: the i-th seed after the study's first validates on fold i mod k
    #: of the training split (0: the grid's validation split)
    folds: int = 0
    grid: str = ""  # the config's name: its runs carry it (tag ``grid``), as the grid's do

    @property
    def tags(self) -> dict[str, str]:
        """The tags every MLflow run of this study carries (its grid's name)."""
        return {"grid": self.grid} if self.grid else {}

    def teacher_for(self, seed: int) -> RunSpec | None:
        """The self-teacher of a trial's ``seed``: the grid's CE cell of that seed."""
        if self.teacher is None:
            return None
        return dataclasses.replace(self.teacher, seed=seed,
                                   data=self.data_for(self.teacher.data, seed))

    def data_for(self, data, seed: int):
        """The data settings a run of ``seed`` trains on (``split: per-seed``; with folds, the
        seed's fold: a teacher never saw its student's validation fold)."""
        out = data.for_seed(seed - self.spec.seed)
        if self.folds:
            out = dataclasses.replace(out, folds=self.folds,
                                      fold=(seed - self.spec.seed) % self.folds)
        return out


def protocol(tune: dict) -> dict[str, Any]:
    """The tuning protocol a config's ``tune:`` section (or the flags) declares, defaults filled:
    ``seeds_per_trial`` (1), ``budget`` (None: count trials), ``optimiser`` (false),
    ``pruning`` (off unless asked: the honest protocol's rule, so that a short study never ends
    with a few complete trials and the rest stopped at epoch 2; refused with a budget or
    several seeds per trial), ``rescore`` (0)."""
    k = int(tune.get("folds") or tune.get("seeds_per_trial") or 1)
    budget = tune.get("budget")
    pruning = tune.get("pruning")
    if pruning is None:
        pruning = False
    return {"seeds_per_trial": k, "budget": budget, "optimiser": bool(tune.get("optimiser")),
            "pruning": bool(pruning), "rescore": int(tune.get("rescore") or 0),
            "folds": int(tune.get("folds") or 0),
            "trials_per_dimension": int(tune.get("trials_per_dimension") or 0)}


def studies(grid: GridConfig, method: str | None = None) -> list[Study]:
    """One study per (dataset, arch, variant) whose method has something to search; a variant
    that reads the tuned values (``hyperparameters: tuned``) and its reference twin are one
    study, listed once."""
    from benchmark.config.compute import cost_factor

    out = []
    names: set[str] = set()
    tune = grid.tune
    proto = protocol(tune)
    for dataset, ds, arch in grid.tasks():
        for v in grid.tunable_variants():
            if method and method not in (v.method, v.label):
                continue
            m = methods.get(v.method)
            space = {k: (p.low, p.high, p.log) for k, p in m.search_space().items()}
            if proto["optimiser"]:
                space.update(OPTIMISER_SPACE)
            for k, bounds in (tune.get("space") or {}).items():
                if k in space:
                    space[k] = (float(bounds[0]), float(bounds[1]), space[k][2])
            name = study_name(dataset, arch, v)
            if not space or name in names:
                continue
            names.add(name)
            hp = v.hyperparameters_for(arch)
            seed = TRIAL_SEED + int(tune.get("seed", 0))  # never a seed the grid evaluates
            grid_settings = grid.train_for(dataset, arch)
            settings = dataclasses.replace(grid_settings, **({"epochs": tune["epochs"]}
                                                             if tune.get("epochs") else {}))
            spec = variant_spec(ds, arch, v, hp, seed, settings)
            # the self-teacher is the grid's own CE cell (the grid's epochs, not tune's)
            teacher = variant_spec(ds, arch, v, hp, seed, grid_settings).teacher_spec()
            k = proto["seeds_per_trial"]
            per_trial = k * settings.epochs * cost_factor(v.method, hp)
            trials = None
            if proto["budget"] is not None:
                trials = int(float(proto["budget"]) // per_trial)
                if trials < 1:
                    raise ConfigError(
                        f"{grid.path}: tune.budget {proto['budget']:g} is less than one "
                        f"trial of {name} ({per_trial:g}: {k} seeds x {settings.epochs} "
                        f"epochs x {per_trial / k / settings.epochs:g} images per epoch)")
            out.append(Study(name, spec, space, teacher,
                             seeds=tuple(seed + i for i in range(k)), trials=trials,
                             images_per_trial=per_trial, pruning=proto["pruning"],
                             rescore=proto["rescore"], grid=grid.name, folds=proto["folds"]))
    if not out:
        which = f" for method {method!r}" if method else ""
        raise ConfigError(f"{grid.path}: nothing to tune{which} (ce has no search space unless "
                          "tune.optimiser is true)")
    if proto["trials_per_dimension"]:  # the count depends on every study of the task
        out = equal_trials(out, proto["trials_per_dimension"], studies(grid) if method else out)
    return out


def equal_trials(found: list[Study], per_dimension: int, among: list[Study]) -> list[Study]:
    """Equal effort within a task: every study of ``found`` gets ``per_dimension`` trials per
    dimension of the largest search space among its task's studies in ``among`` (every study
    of the grid, whichever a command tunes; a costlier teacher pays in images, never in
    trials)."""
    def task(s: Study) -> tuple[str, str]:
        return (s.spec.data.task, s.spec.arch)

    widest: dict[tuple[str, str], int] = {}
    for s in among:
        widest[task(s)] = max(widest.get(task(s), 0), len(s.space))
    return [dataclasses.replace(s, trials=per_dimension * widest[task(s)]) for s in found]


def tuned_hyperparameters(grid: GridConfig, dataset: str, arch: str, variant: Variant,
                          storage: str | None = None) -> dict[str, Any]:
    """The best trial's parameters of the matching study; a clear error when there is none."""
    name = study_name(dataset, arch, variant)
    url = storage or grid.tune.get("storage") or default_storage()
    hint = (f"no tuned values for study {name!r} in {url}; run: drkd-bench tune {grid.path} "
            f"--method {variant.method}")
    if "://" not in url and not Path(url).is_file():  # reading must not create a journal
        raise ConfigError(hint)
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise ConfigError(hint) from None
    best = chosen_trial(study)
    if best is None:
        raise ConfigError(hint + " (it has no complete trial)")
    return dict(best.params)


#: Fresh seeds for re-scoring start here (never a trial's seed).
#: Seeds that no grid cell evaluates (a config's seeds must lie below RESCORE_SEED): a study's
#: trials train ``TRIAL_SEED + tune.seed + i`` and its re-scores ``RESCORE_SEED + that + i``, so
#: that tuning never selects on the runs the report then evaluates.
RESCORE_SEED = RESERVED_SEEDS
TRIAL_SEED = 2 * RESERVED_SEEDS
