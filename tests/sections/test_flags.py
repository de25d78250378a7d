"""Runs that went wrong are shown, not averaged away silently: the rule (flags.FLAG_RULE) on constructed runs."""
import dataclasses

import numpy as np

import medbench_core as mb
from medbench_core.flags import FLAG_MARK, constant_prediction, flag_runs, flags_note
from medbench_core.results import ResultsStore
from medbench_core.run_tables import runs_table
from medbench_core.scores import group_label
from medbench_core.sections import Results
from test_sections import _runs


def _grid(section="granularity", **narrow):
    return dataclasses.replace(mb.validate_section_params(section, profile="smoke"), **narrow)


def test_a_collapsed_run_is_flagged_and_only_it():
    # the demo's case: scratch pneumothorax, one seed at Dice 20 against 80-84 for the others
    df = _runs({("synth_imagenet", "syn_pxs", 1.0): [82, 80, 84, 20], ("synth_inat", "syn_pxs", 1.0): [55, 60, 70, 65]})
    flags = flag_runs(df)
    assert flags[["group", "task", "seed"]].values.tolist() == [["synth_imagenet", "syn_pxs", 3]]
    assert flags["score"].iloc[0] == 20 and flags["others_median"].iloc[0] == 82
    assert "-62.0 points" in flags["reason"].iloc[0]


def test_ordinary_spread_and_small_groups_are_not_flagged():
    assert not len(flag_runs(_runs({("synth_imagenet", "syn_pxs", 1.0): [55, 60, 70, 65, 48]})))
    # two runs: no group to compare a run with
    assert not len(flag_runs(_runs({("synth_imagenet", "syn_pxs", 1.0): [80, 20]})))
    # far in spread units but within the points floor (a very tight group): not flagged
    assert not len(flag_runs(_runs({("synth_imagenet", "syn_txc", 1.0): [90.0, 90.1, 89.9, 85.0]})))


def test_constant_predictions_are_flagged_from_the_stored_cases(tmp_path):
    df = _runs({("synth_imagenet", "syn_txc", 1.0): [70, 71, 72], ("synth_imagenet", "syn_pxs", 1.0): [60, 61, 62]})
    store = ResultsStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    for h, g in df.groupby("config_hash"):
        if g["task"].iloc[0] == "syn_txc":
            probs = np.full((20, 1), 0.3) if h.endswith("-1") else rng.random((20, 1))
            cases = {"test_probs": probs, "test_labels": (rng.random((20, 1)) > .5).astype(np.uint8)}
        else:
            fg = np.zeros(12) if h.endswith("-2") else rng.random(12)
            cases = {"test_dice": rng.random(12), "test_foreground": fg}
        rows = g.assign(section="granularity", profile="smoke", medbench_version="x", git_sha="x", torch_version="x", device="cpu",
                        wall_seconds=1.0, finished_at="x", synthetic=True)
        store.write_run(h, rows.drop(columns="group"), {"config_hash": h}, cases)
    flags = flag_runs(df, store).set_index("task")
    assert flags.loc["syn_txc", "seed"] == 1 and "same probabilities" in flags.loc["syn_txc", "reason"]
    assert flags.loc["syn_pxs", "seed"] == 2 and "empty mask" in flags.loc["syn_pxs", "reason"]
    assert constant_prediction({"test_dice": np.ones(3)}) is None  # runs stored before the foreground


def test_the_table_marks_the_cell_and_names_the_run_under_it():
    df = _runs({("synth_imagenet", "syn_pxs", 1.0): [82, 80, 84, 20], ("synth_inat", "syn_pxs", 1.0): [70, 71, 72, 73],
                ("scratch", "syn_pxs", 1.0): [50, 51, 52, 53]})
    res = Results(_grid(tasks=("syn_pxs",), inits=("scratch", "synth_imagenet", "synth_inat")), df)
    s = res.summary.set_index("group")
    assert s.loc["synth_imagenet", "flagged"] == 1 and s.loc["synth_inat", "flagged"] == 0
    assert np.isclose(s.loc["synth_imagenet", "mean"], np.mean([82, 80, 84, 20]))  # still in the mean, as in the papers
    table = res.section.table(res)
    flagged_cell = table.text.loc[group_label("synth_imagenet")].iloc[0]
    assert FLAG_MARK in flagged_cell and FLAG_MARK not in table.text.loc[group_label("synth_inat")].iloc[0]
    assert "holds a flagged run" in table.html
    note = flags_note(res.flags)
    assert "seed 3: 20.00" in note and mb.create_task("syn_pxs", "smoke").display_name in note
    assert flags_note(flag_runs(_runs({("scratch", "syn_pxs", 1.0): [50, 51, 52]}))) == ""


def test_the_verdict_says_whether_it_depends_on_the_flagged_run():
    g = _grid(tasks=("syn_pxs", "syn_txc"), inits=("synth_imagenet", "synth_inat"))
    cls = {("synth_imagenet", "syn_txc", 1.0): [90, 90.2, 89.8, 90.1], ("synth_inat", "syn_txc", 1.0): [85, 85.2, 84.8, 85.1]}
    # fine-grained better on segmentation by 5 points, one ImageNet seed collapsed: the claim holds either way
    holds = _runs(cls | {("synth_imagenet", "syn_pxs", 1.0): [70, 70.3, 69.8, 10],
                         ("synth_inat", "syn_pxs", 1.0): [75, 75.2, 74.9, 75.1]})
    v = Results(g, holds).verdict
    assert v.reasons[-1].startswith("The verdict does not depend on the 1 flagged run")
    # the fine-grained advantage exists only through a collapsed ImageNet run... and a collapsed fine-grained run
    # hides a real advantage: without it the verdict changes
    hides = _runs(cls | {("synth_imagenet", "syn_pxs", 1.0): [70, 70.3, 69.8, 70.1],
                         ("synth_inat", "syn_pxs", 1.0): [75, 75.2, 74.9, 5]})
    v2 = Results(g, hides).verdict
    without = Results(g, hides[hides["config_hash"] != "synth_inat-syn_pxs-1.0-3"]).verdict.outcome
    assert without != v2.outcome
    assert v2.reasons[-1].startswith("The verdict depends on the 1 flagged run") and without in v2.reasons[-1]
    assert v2.reasons[-1] in v2._repr_markdown_()
    clean = _runs(cls | {("synth_imagenet", "syn_pxs", 1.0): [70, 70.3, 69.8, 70.1],
                         ("synth_inat", "syn_pxs", 1.0): [75, 75.2, 74.9, 75.1]})
    assert not any("flagged" in r for r in Results(g, clean).verdict.reasons)


def test_every_run_is_listed_seed_by_seed_with_its_flag():
    df = _runs({("synth_imagenet", "syn_pxs", 1.0): [82, 80, 84, 20], ("synth_inat", "syn_pxs", 1.0): [70, 71, 72, 73]})
    t = runs_table(df, ["synth_imagenet", "synth_inat"], ["syn_pxs"], flag_runs(df))
    assert t.text.iloc[0, 0] == f"82.0  80.0  84.0  20.0{FLAG_MARK}" and t.text.iloc[1, 0] == "70.0  71.0  72.0  73.0"
    assert "a flagged run" in t.html
