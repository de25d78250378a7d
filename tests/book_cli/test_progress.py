"""The progress line of `make book` and `medbench run`: runs and pre-training stages done, elapsed, time left from
the wall times the finished runs recorded; a redrawn line on a terminal, one line per finished run in a log."""
import io
import time

import medbench_core as mb
from medbench_core.progress import SectionProgress, stage_paths


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _store_run(results, cfg, wall):
    (results / "runs").mkdir(parents=True, exist_ok=True)
    (results / "runs" / f"{cfg.config_hash()}.csv").write_text(f"task,wall_seconds\n{cfg.task},{wall}\n")


def test_a_log_gets_one_line_per_finished_run_with_an_estimate_from_recorded_wall_times(tmp_path):
    grid = mb.validate_section_params("domain-adaptation", profile="smoke")
    configs = grid.configs
    results = tmp_path / "results"
    _store_run(results, configs[0], 10.0)  # stored before: not news, but it informs the estimate
    log = io.StringIO()
    with SectionProgress("domain-adaptation", configs, results, tmp_path / "cache", stream=log, interval=0.05) as p:
        assert p.estimate() == 10.0 * (len(configs) - 1)
        for cfg, wall in zip(configs[1:3], (20.0, 30.0)):
            _store_run(results, cfg, wall)
            time.sleep(0.2)
    lines = log.getvalue().splitlines()
    n = len(configs)
    assert lines[0].startswith(f"domain-adaptation: 1 of {n} runs already stored, 0 of ")
    finished = [ln for ln in lines if "finished" in ln]
    assert len(finished) == 2 and "in 20.0 s" in finished[0] and f"runs 3/{n}" in finished[1]
    # the estimate: each remaining run takes its task's mean recorded time (or the overall mean)
    assert "about" in finished[1] and "left" in finished[1] and "\r" not in log.getvalue()
    assert len(stage_paths(configs, tmp_path / "cache")) == 3  # ImageNet-like, chest, ImageNet-like -> chest


def test_a_terminal_gets_one_redrawn_line(tmp_path):
    configs = mb.validate_section_params("granularity", profile="smoke").configs[:2]
    term = Terminal()
    with SectionProgress("granularity", configs, tmp_path, tmp_path, stream=term, interval=0.05):
        time.sleep(0.15)
        assert "time left: estimated after the first run" in term.getvalue()
        for c in configs:
            _store_run(tmp_path, c, 1.0)
        time.sleep(0.15)
    out = term.getvalue()
    assert "\r\x1b[K" in out and out.rstrip().endswith("done") and out.count("\n") == 2


def test_the_estimate_divides_by_the_measured_number_of_runs_at_once(tmp_path):
    configs = mb.validate_section_params("granularity", profile="smoke").configs[:6]
    with SectionProgress("granularity", configs, tmp_path, tmp_path, stream=io.StringIO(), interval=10) as p:
        assert p.concurrency() == 1.0
        _store_run(tmp_path, configs[0], 10.0)
        _store_run(tmp_path, configs[1], 10.0)  # two workers: two 10-s runs ending together
        p.poll()
        assert 1.9 < p.concurrency() <= 2.0
        assert abs(p.estimate() - 4 * 10.0 / p.concurrency()) < 1e-9
