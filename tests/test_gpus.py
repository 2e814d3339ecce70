"""Several cells per GPU: which device each local worker gets, what a Ray task asks for, and the
command-line checks. The CUDA count is faked; nothing here needs a GPU."""
import os
import queue

import pytest
import torch

from benchmark import cli
from benchmark.jobs import grid
from benchmark.store.runtime import Runtime, gpu_slots


def test_workers_go_round_robin_over_every_gpu():
    gpus = ["cuda:0", "cuda:1", "cuda:2"]
    assert gpu_slots("cuda", gpus, 6) == ["cuda:0", "cuda:1", "cuda:2"] * 2
    assert gpu_slots("cuda", gpus, 4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    assert gpu_slots("cpu", [], 3) == ["cpu"] * 3


@pytest.fixture
def four_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


def test_runtime_spreads_k_cells_over_the_visible_gpus(four_gpus):
    rt = Runtime(device="cuda", cells_per_gpu=3)
    assert rt.gpus() == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert rt.default_workers(100) == 12 and rt.default_workers(5) == 5
    assert rt.worker_devices(5) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0"]
    assert rt.gpu_share() == pytest.approx(1 / 3)
    one = Runtime(device="cuda:2", cells_per_gpu=2)  # a named GPU: only that one
    assert one.worker_devices(3) == ["cuda:2"] * 3 and one.default_workers(10) == 2
    assert Runtime(device="auto").gpus() == rt.gpus()


def test_cpu_runtime_keeps_one_worker_per_core_and_asks_ray_for_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rt = Runtime(device="cpu")
    assert rt.gpus() == [] and rt.gpu_share() == 0
    assert rt.worker_devices(2) == ["cpu", "cpu"]
    assert rt.default_workers(1000) == len(os.sched_getaffinity(0))


def test_a_job_pinned_to_one_core_trains_one_thread(monkeypatch, tmp_path):
    """Two jobs pinned to a core each (taskset) must not each take every core's thread: sized
    from the machine's count, two 2-thread studies on 2 cores trained 30 times slower."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1})
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    rt = Runtime(device="cpu")
    assert rt.default_workers(1000) == 1
    assert rt.for_workers(tmp_path, "sqlite:///x.db", 1).threads == 1


def test_a_grid_worker_takes_its_device_from_the_slots():
    slots = queue.Queue()
    slots.put("cuda:1")
    grid._init_worker(Runtime(device="cuda", threads=1), queue.Queue(), slots, dict(os.environ))
    assert grid._worker["rt"].device == "cuda:1"


def test_cells_per_gpu_without_a_gpu_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = cli.main(["grid", "quick", "--results", str(tmp_path / "r"), "--cells-per-gpu", "2",
                     "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA device" in err and "Traceback" not in err
    assert cli.main(["grid", "quick", "--results", str(tmp_path / "r"),
                     "--cells-per-gpu", "0"]) == 2
    assert not (tmp_path / "r").exists()


def test_a_job_starting_on_a_busy_machine_with_several_threads_a_process_says_so(monkeypatch):
    from benchmark.store import runtime

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 1.0, 1.0))
    note = runtime.busy_note(1)
    assert note.startswith("note: the machine is busy (1-minute load 1.6 on 2 cores)")
    assert "1 process(es) will run 2 threads" in note and "taskset" in note
    assert runtime.busy_note(2) is None  # one thread a process: nothing to oversubscribe
    assert runtime.busy_note(1, "cuda:0") is None
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 1.0, 1.0))
    assert runtime.busy_note(1) is None
