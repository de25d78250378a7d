"""The GPU check (benchmarks/gpu.sh, benchmarks/gpu_check.py) runs on a CPU at a tiny size, writes the figures
where the plan reads its throughputs, and refuses to pretend without a GPU."""
import json
import subprocess
import sys

import pytest

from medbench_core import plan


@pytest.mark.slow
def test_the_gpu_check_runs_tiny_on_a_cpu_and_the_plan_reads_it(tmp_path, repo_root):
    out = tmp_path / "gpu_throughput.json"
    proc = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--size", "32",
         "--stored", "36", "--batch", "4", "--steps", "2", "--warmup", "1", "--archs", "resnet50",
         "--sections", "granularity", "--colab-size", "32", "--colab-steps", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads(out.read_text())
    (step,) = rec["paper_steps"]
    assert step["arch"] == "resnet50" and step["augment"] == "paper_cls" and step["images_per_s"] > 0
    assert 0 <= step["loader_wait_share"] < 1
    (sec,) = rec["colab_sections"]
    assert sec["section"] == "granularity" and sec["runs"] > 0 and sec["minutes"] > 0
    assert "| resnet50 | 32 (36) | 4 |" in proc.stdout and "| granularity |" in proc.stdout
    table, basis = plan.throughputs(out)
    assert table["resnet50"] == pytest.approx(step["images_per_s"] * (32 / 224) ** 2)
    assert table["swin_base"] == plan.ASSUMED_THROUGHPUT["swin_base"]  # not measured: still assumed
    assert basis.startswith("measured for resnet50 on cpu") and "assumed" in basis


def test_without_a_file_the_plan_says_its_throughputs_are_assumed(tmp_path):
    table, basis = plan.throughputs(tmp_path / "none.json")
    assert table == plan.ASSUMED_THROUGHPUT and basis == plan.THROUGHPUT_BASIS
    (tmp_path / "bad.json").write_text("{not json")
    assert plan.throughputs(tmp_path / "bad.json")[1] == plan.THROUGHPUT_BASIS


def test_gpu_sh_refuses_without_a_gpu(repo_root):
    proc = subprocess.run(["bash", str(repo_root / "benchmarks" / "gpu.sh")], capture_output=True, text=True,
                          env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode != 0 and "no CUDA GPU visible" in proc.stderr
