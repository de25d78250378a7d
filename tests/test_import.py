"""`medbench results import/export`: runs made elsewhere join the store only if the whole file is valid."""
import csv

import pandas as pd
import pytest

import medbench_core as mb
from medbench_core.cli import main
from medbench_core.sections import known_names
from medbench_core.results import COLUMNS, ResultsStore, ResultsImportError, export_results, import_results


@pytest.fixture(scope="module")
def source_store(tmp_path_factory, smoke_cache):
    """A store with four smoke runs, standing for a lab GPU's results."""
    store = ResultsStore(tmp_path_factory.mktemp("elsewhere"))
    for task in ("syn_txc", "syn_pxs"):
        for seed in (0, 1):
            mb.run_one(mb.make_run_config("domain-adaptation", task, "scratch", "test_resnet", seed, "smoke"), store,
                       cache_dir=smoke_cache)
    return store


@pytest.fixture
def exported(source_store, tmp_path):
    path = tmp_path / "results.csv"
    assert export_results(source_store, path) == len(source_store.load())
    return path


def snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_export_import_round_trip_and_idempotence(exported, source_store, tmp_path):
    out = import_results(exported, tmp_path / "here", known=known_names())
    assert out == {"imported": 4, "already_present": 0, "rows": len(source_store.load())}
    here = ResultsStore(tmp_path / "here")
    pd.testing.assert_frame_equal(here.load(), source_store.load())
    assert here.config(here.hashes()[0])["imported_from"] == str(exported.resolve())
    before = snapshot(tmp_path / "here")
    assert import_results(exported, tmp_path / "here", known=known_names())["already_present"] == 4
    assert snapshot(tmp_path / "here") == before


def _rewrite(src, dst, line, col, value=None, drop=False, extra=None):
    rows = list(csv.reader(open(src)))
    header = rows[0]
    if drop:
        i = header.index(col)
        rows = [r[:i] + r[i + 1:] for r in rows]
    elif extra is not None:
        rows.insert(line - 1, list(rows[extra - 1]))
    elif col is not None:
        rows[line - 1][header.index(col)] = value
    else:
        rows[line - 1] = rows[line - 1][:5]
    with open(dst, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return dst


@pytest.mark.parametrize("edit,needle", [
    (dict(line=4, col="split", value="tset"), "line 4: column 'split' must be one of train, val, test"),
    (dict(line=6, col="task", value="dxc14"), "line 6: column 'task' is not a known task; valid: syn_dxc"),
    (dict(line=9, col="value", value="0.8x"), "line 9: column 'value' is not a number"),
    (dict(line=3, col="config_hash", value="abc"), "line 3: column 'config_hash' must be 16"),
    (dict(line=5, col="seed", value="7"), "line 5: run "),  # another seed inside one run
    (dict(line=1, col="metric", drop=True), "line 1: the header lacks the columns ['metric']"),
    (dict(line=7, col=None), "line 7: wrong number of fields"),
    (dict(line=8, col=None, extra=3), "line 8: duplicate of line 3"),
])
def test_malformed_file_is_rejected_whole_and_the_store_is_unchanged(exported, source_store, tmp_path, edit,
                                                                      needle, capsys):
    store_dir = tmp_path / "here"
    import_results(exported, store_dir, known=known_names())  # an existing store with other runs in it
    before = snapshot(store_dir)
    bad = _rewrite(exported, tmp_path / "bad.csv", **edit)
    # valid rows come first in the file: none of them may be written
    assert main(["results", "import", str(bad), "--results-dir", str(tmp_path / "new")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    with pytest.raises(ResultsImportError):
        import_results(bad, store_dir, known=known_names())
    assert snapshot(store_dir) == before


def test_conflicting_values_for_a_stored_run_are_refused(exported, tmp_path):
    import_results(exported, tmp_path / "here", known=known_names())
    before = snapshot(tmp_path / "here")
    df = pd.read_csv(exported, dtype={"config_hash": str, "git_sha": str})
    df.loc[0, "value"] = df.loc[0, "value"] + 0.01
    df.to_csv(tmp_path / "changed.csv", index=False)
    with pytest.raises(ResultsImportError, match="already in .* with other values"):
        import_results(tmp_path / "changed.csv", tmp_path / "here", known=known_names())
    assert snapshot(tmp_path / "here") == before


def test_text_columns_stay_text(tmp_path, exported):
    """A hash made only of digits and one 'e' must not turn into a float (it did before the store fixed dtypes)."""
    df = pd.read_csv(exported, dtype={"config_hash": str, "git_sha": str})
    first = df["config_hash"] == df["config_hash"].iloc[0]
    df.loc[first, "config_hash"] = "9e81234567890123"
    df["git_sha"] = "1234567"
    df.to_csv(tmp_path / "numeric.csv", index=False)
    import_results(tmp_path / "numeric.csv", tmp_path / "here", known=known_names())
    store = ResultsStore(tmp_path / "here")
    assert "9e81234567890123" in store.hashes()
    rows = store.rows("9e81234567890123")
    assert rows["config_hash"].iloc[0] == "9e81234567890123" and rows["git_sha"].iloc[0] == "1234567"
    assert list(rows.columns) == COLUMNS
