"""Re-scoring a study's candidates in the command's one process (the path before round seven:
torch's default threads) against sharing them among --workers processes, side by side in one
run, on a finished study of a store. Nothing is written: the candidates are trained on seeds
no study uses and the scores are only compared.
Usage: python scripts/rescore-speed.py CONFIG STUDY-NAME RESULTS [WORKERS]
  e.g. python scripts/rescore-speed.py paper-question \
           fashion-mnist:clean/cnn28s/drkd-online results/pq"""
import sys
import time

import optuna

from benchmark import config
from benchmark.jobs import tune
from benchmark.store.runtime import Runtime


def main() -> None:  # a worker process imports this file: nothing may run at import
    name, study_name, results = sys.argv[1:4]
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    s = next(s for s in tune.studies(config.load_grid(name)) if s.name == study_name)
    study = optuna.load_study(study_name=study_name, storage=tune.open_storage(None, results))
    pool = tune.candidates(study)
    seeds = [tune.RESCORE_SEED + 900 + i for i in range(s.rescore or 2)]
    rt = Runtime(results=results, device="cpu")
    tracker = rt.tracker()
    times, scores = {}, {}
    for w in (1, workers):
        start = time.perf_counter()
        got = tune._rescores(s, pool, seeds, tracker, rt, w)
        scores[w] = {t.number: score["value"] for t, score in got}
        times[w] = time.perf_counter() - start
        print(f"{len(pool)} candidates x {len(seeds)} seeds, {w} process(es): {times[w]:.1f} s")
    print(f"ratio {times[1] / times[workers]:.2f}x; the same choice: "
          f"{max(scores[1], key=scores[1].get) == max(scores[workers], key=scores[workers].get)}")


if __name__ == "__main__":
    main()
