"""The papers' numbers as data: completeness against references/REPORTED.md, re-derived tests, claim flags."""
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import medbench_core as mb
from medbench_core.papers import as_sample_std, load_reported, rederive_pair, rederive_vs_best
from medbench_core.scores import summarize
from medbench_core.sections.domain_adaptation import compare_with_reported


def claims(section=None) -> pd.DataFrame:
    """Every section plug-in's claims checked against the papers' numbers (or one section's)."""
    keys = [section] if section else mb.list_sections()
    return pd.DataFrame([r for k in keys for r in mb.get_section(k).paper_claims()])


@pytest.fixture(scope="module")
def text(repo_root):
    return (repo_root / "references" / "REPORTED.md").read_text()


@pytest.fixture(scope="module")
def reg():
    return load_reported()


def _section(text, number):
    return re.split(r"\n## ", text)[number]


def test_every_number_of_the_domain_adaptation_table_is_in_the_registry(text, reg):
    body = _section(text, 1)
    header = [c.strip() for c in re.search(r"\| Initialization \|(.*)\|", body).group(1).split("|")]
    tasks = [h.split()[0] for h in header]
    rows = [ln for ln in body.splitlines() if ln.startswith("| ") and "±" in ln or "n/a" in ln and ln.startswith("|")]
    assert len(rows) == 6
    da = reg[reg.section == "domain-adaptation"].set_index(["task", "init"])
    for ln in rows:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        init = cells[0]
        for task, cell in zip(tasks, cells[1:]):
            r = da.loc[(task, init)]
            if cell.startswith("n/a"):
                assert r["mark"] == "n/a" and np.isnan(r["mean"])
                continue
            m, s = re.match(r"([\d.]+)±([\d.]+)", cell).groups()
            assert (r["mean"], r["std"]) == (float(m), float(s)), (task, init)
            assert (r["mark"] == "best") == ("(best)" in cell), (task, init)


def test_every_printed_p_value_of_the_granularity_figure_is_in_the_registry(text, reg):
    found = re.findall(r"(PXS|VFS|LXS|DXC14|DXC5|TXC|ECC) p=([\d.e-]+)", _section(text, 2))
    assert len(found) == 7
    g = reg[reg.section == "granularity"].set_index("task")
    for task, p in found:
        assert g.loc[task, "p_value"] == pytest.approx(float(p.rstrip(".")))
    seg = _section(text, 2).split("Classification")[0]
    assert set(g[g.higher == "iNat2021"].index) == set(re.findall(r"(PXS|VFS|LXS) p=", seg))


def test_self_supervised_marks_match_the_text(text, reg):
    body = _section(text, 3)
    methods = [m.strip() for m in re.search(r"paper order\): (.*?)\. Families", body, re.S).group(1).replace("\n", " ")
               .split(",")]
    assert len(methods) == 14
    ssl = reg[(reg.section == "self-supervised") & (reg.init != "ImageNet")]
    assert set(ssl.init) == set(methods)
    six = [m.strip() for m in re.search(r"PXS .*?: (.*?) significantly better", body).group(1).split(",")]
    for task in ("PXS", "ECC"):
        marked = set(ssl[(ssl.task == task) & (ssl["mark"] == "***")].init)
        assert marked == set(six), task
    assert ssl.query("task == 'DXC14' and init == 'SwAV'")["mark"].item() == "*"
    assert ssl.query("task == 'DXC5' and init == 'SimCLR-v1'")["mark"].item() == "**"
    for task in ("VFS", "LXS", "TXC"):
        assert (ssl[ssl.task == task]["mark"] == "n.s.").all() and (ssl.task == task).sum() == 14
    assert reg.query("section == 'self-supervised' and task == 'PXS' and init == 'ImageNet'")["mean"].item() == 67.9
    assert reg.query("section == 'self-supervised' and task == 'ECC' and init == 'ImageNet'")["mean"].item() == 94.8


def test_architecture_and_data_size_tables_are_in_the_registry(text, reg):
    body = _section(text, 4)
    arch = reg[reg.section == "architectures"]
    for pair, conv in (("Tiny", "ConvNeXt-T"), ("Base", "ConvNeXt-B")):
        cells = re.search(rf"\| {pair} \(.*?\) \|(.*)\|", body).group(1).split("|")
        printed = [float(c.strip()) for c in cells]
        ours = arch[arch.comparison.str.startswith(conv)].sort_values("labelled_images")["mean"].tolist()
        assert ours == printed, pair
    ds = reg[reg.section == "data-size"]
    rows = re.findall(r"\| (\d+)K .*?\| ([−+][\d.]+)%(?: \(([^)]*)\))? \| ([−+][\d.]+)% \|", body)
    assert len(rows) == 5
    for n, imnet, mark, scratch in rows:
        sel = ds[ds.labelled_images == int(n) * 1000].set_index("init")
        assert sel.loc["ImageNet", "mean"] == float(imnet.replace("−", "-"))
        assert sel.loc["ImageNet", "mark"] == mark
        assert sel.loc["Scratch", "mean"] == float(scratch.replace("−", "-"))


def test_population_std_conversion_and_rederived_test_match_scipy_on_raw_data():
    # n values, half at m - s and half at m + s: mean m, population std exactly s
    def raw(m, s, n):
        return np.r_[np.full(n // 2, m - s), np.full(n // 2, m + s)]

    for n in (4, 6, 10):
        a, b = raw(95.62, 0.63, n), raw(98.47, 0.26, n)
        assert a.std(ddof=0) == pytest.approx(0.63) and a.std(ddof=1) == pytest.approx(as_sample_std(0.63, n,
                                                                                                     "population"))
        p = rederive_pair("domain-adaptation", "TXC", "ImageNet", "ImageNet→ChestX-ray14", n_runs=(n,),
                          std_kinds=("population",))[(n, "population")]
        assert p == pytest.approx(st.ttest_ind(a, b).pvalue)
    with pytest.raises(ValueError, match="population, sample"):
        as_sample_std(1.0, 3, "pooled")


def test_rederived_equivalences_and_claim_flags():
    r = rederive_vs_best().set_index(["task", "init"])["status"]
    assert r[("TXC", "ImageNet→ChestX-ray14")] == "best" and r[("TXC", "ImageNet")] == "below"
    assert r[("PXS", "CheXpert")] == "equivalent"  # p > 0.46 under every assumption
    assert r[("PXS", "ImageNet")] == "depends"  # 0.21 with 3 runs, 0.004 with 10
    c = claims().set_index("claim")["flag"]
    assert c["TXC: domain-adapted pre-training beats ImageNet pre-training"] == "supported"
    assert c["DXC5: domain-adapted pre-training beats ImageNet pre-training"] == "not supported"
    assert c["PXS: domain-adapted pre-training beats ImageNet pre-training"] == "undeterminable"
    assert c["PXS (segmentation): iNat2021 pre-training is better"] == "not supported"  # printed p = 0.19
    assert c["ECC (classification): ImageNet pre-training is better"] == "supported"  # printed p = 0.0017
    assert set(claims()["flag"]) <= {"supported", "not supported", "undeterminable"}
    assert (claims("architectures")["flag"] == "undeterminable").all()


@pytest.mark.parametrize("section", mb.list_sections())
def test_every_question_has_a_table_figure_and_claims(section):
    sec = mb.get_section(section)
    table = sec.paper_table()
    assert "<table" in table.html and len(table.text)
    fig = sec.paper_plot()
    assert fig.axes
    assert len(sec.paper_claims_table().text) >= 1


def _stats(rows, baseline="synth_imagenet"):
    df = pd.DataFrame([{"task": t, "init": i, "seed": s, "split": "test", "metric": "mean_auc", "value": v / 100,
                        "arch": "test_resnet", "fraction": 1.0, "config_hash": f"{t}{i}{s}"}
                       for t, i, vals in rows for s, v in enumerate(vals)])
    return summarize(df, baseline=baseline)


def test_reproduced_vs_reported_on_synthetic_compares_directions():
    stats = _stats([("syn_txc", "synth_imagenet", [90, 91, 92]), ("syn_txc", "synth_imagenet_chest", [95, 96, 97]),
                    ("syn_txc", "scratch", [93, 94, 95])])
    t = compare_with_reported(stats, "domain-adaptation", baseline="synth_imagenet").text
    t = t.set_index("effect")
    # paper TXC: ImageNet→ChestX-ray14 98.47 vs ImageNet 95.62 (+2.85); Scratch 89.03 (-6.59)
    assert t.loc["ImageNet-like → chest vs ImageNet-like", "paper (points)"] == "+2.85"
    assert t.loc["ImageNet-like → chest vs ImageNet-like", "same direction"] == "yes"
    assert t.loc["Scratch vs ImageNet-like", "same direction"] == "no"  # ours +3, theirs -6.59
    assert t.loc["Scratch vs ImageNet-like", "paper significant"] == "yes"


def test_reproduced_vs_reported_on_real_data_checks_the_spread():
    # a real task (Shenzhen stands for TXC): means are compared with the reported spread
    stats = _stats([("shenzhen", "synth_imagenet", [95.4, 95.6, 95.8]), ("shenzhen", "scratch", [80, 81, 82])])
    t = compare_with_reported(stats, "domain-adaptation", baseline="synth_imagenet")
    rows = t.text.set_index("paper")
    assert rows.loc["TXC / ImageNet", "inside reported spread"] == "yes"  # 95.6 vs 95.62 ± 0.63
    assert rows.loc["TXC / ImageNet", "difference"] == "-0.02"
    assert rows.loc["TXC / Scratch", "inside reported spread"] == "no"  # 81 vs 89.03 ± 1.82
    assert "1 of 2 of our means fall inside" in t.html
