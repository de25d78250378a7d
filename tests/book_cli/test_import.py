"""`medbench results import/export`: runs made elsewhere join the store only if the whole file is valid."""
import csv
import io
import shutil
import zipfile

import pandas as pd
import pytest

import medbench_core as mb
from medbench_core.check import check_results
from medbench_core.cli import main
from medbench_core.errors import BadFileError, BadPathError, BadValueError
from medbench_core.sections import known_names
from medbench_core.results import COLUMNS, ResultsStore
from medbench_core.results_checks import ResultsImportError
from medbench_core.results_export import export_results
from medbench_core.results_file import import_results, read_results_file


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


def _rewrite(src, dst, line, col=None, value=None, drop=False, extra=None, cells=None, add=None):
    rows = list(csv.reader(open(src)))
    header = rows[0]
    if drop:
        i = header.index(col)
        rows = [r[:i] + r[i + 1:] for r in rows]
    elif extra is not None:
        rows.insert(line - 1, list(rows[extra - 1]))
    elif add is not None:  # a column of its own, filled in on every row
        rows = [rows[0] + [add]] + [r + ["1"] for r in rows[1:]]
    elif cells is not None:
        for c, v in cells.items():
            rows[line - 1][header.index(c)] = v
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
    # meaning, not only shape. The export's order (task, init, seed, split, metric): syn_pxs seed 0 on lines 2-8
    # (test dice, test loss, train best_epoch, epochs_run, n_images, val dice, val loss), seed 1 on 9-15, then
    # syn_txc (one class, so no auc:<class> rows) seed 0 on 16-22 (test loss, test mean_auc, ...); each needle names
    # the metric, so a changed order fails here rather than testing another row
    (dict(line=17, col="value", value="7.5"), "line 17: column 'value' must be in [0, 1] for mean_auc (a score is a "
                                              "fraction: 0.75, not 75)"),
    (dict(line=17, col="value", value="-3"), "line 17: column 'value' must be in [0, 1] for mean_auc (value '-3')"),
    (dict(line=16, cells={"metric": "auc:cavity", "value": "1.5"}), "line 16: column 'value' must be in [0, 1] for "
                                                                    "auc:cavity"),
    (dict(line=2, col="value", value="1.2"), "line 2: column 'value' must be in [0, 1] for dice"),
    (dict(line=3, col="value", value="-0.5"), "line 3: column 'value' must be >= 0 for loss"),
    (dict(line=5, col="value", value="2.5"), "line 5: column 'value' must be a whole number >= 0 for epochs_run"),
    (dict(line=17, col="metric", value="mean_acu"), "line 17: column 'metric' is not a metric of the test split"),
    (dict(line=2, col="seed", value="-5"), "line 2: column 'seed' is negative"),
    (dict(line=2, col="seed", value="3.5"), "line 2: column 'seed' is not an integer (value '3.5')"),
    (dict(line=2, col="seed", value=str(2**32)), "line 2: column 'seed' is larger than 2**32 - 1 = 4294967295"),
    (dict(line=1, add="foo"), "line 1: unknown column 'foo'; expected section, task, init"),
    (dict(line=1, col="device", value="task"), "line 1: the header repeats the column 'task'"),
    # formulas a spreadsheet would run (OWASP CSV injection), in text columns
    (dict(line=3, col="git_sha", value="=cmd|' /C calc'!A0"), "line 3: column 'git_sha' starts with '=', which a "
                                                              "spreadsheet runs as a formula"),
    (dict(line=10, col="device", value='=HYPERLINK("http://x","y")'), "line 10: column 'device' starts with '='"),
    (dict(line=12, col="finished_at", value="@SUM(1)"), "line 12: column 'finished_at' starts with '@'"),
    (dict(line=20, col="torch_version", value="-2+3"), "line 20: column 'torch_version' starts with '-'"),
    (dict(line=2, col="task", value="+syn_pxs"), "line 2: column 'task' starts with '+'"),  # not "unknown task"
])
def test_malformed_file_is_rejected_whole_and_the_store_is_unchanged(exported, source_store, tmp_path, edit,
                                                                      needle, capsys):
    store_dir = tmp_path / "here"
    import_results(exported, store_dir, known=known_names())  # an existing store with other runs in it
    before = snapshot(store_dir)
    bad = _rewrite(exported, tmp_path / "bad.csv", **edit)
    # valid rows come first in the file: none of them may be written
    # (2: a ValueError until the command line returns each error kind's own code, BadFileError's 4)
    code = main(["results", "import", str(bad), "--results-dir", str(tmp_path / "new")])
    assert code in (2, BadFileError.exit_code)
    assert f"{bad} {needle}" in capsys.readouterr().err  # the message names the file, then the line
    assert not (tmp_path / "new").exists()
    with pytest.raises(ResultsImportError) as e:
        import_results(bad, store_dir, known=known_names())
    assert isinstance(e.value, BadFileError) and isinstance(e.value, ValueError)
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


def test_excel_csv_utf8_with_bom_and_crlf_imports_as_the_clean_file(exported, tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark and ends lines with CRLF; neither may change a value."""
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbf" + exported.read_bytes().replace(b"\n", b"\r\n"))
    assert excel.read_bytes().count(b"\r\n") == exported.read_bytes().count(b"\n")
    import_results(excel, tmp_path / "excel", known=known_names())
    import_results(exported, tmp_path / "clean", known=known_names())
    pd.testing.assert_frame_equal(ResultsStore(tmp_path / "excel").load(), ResultsStore(tmp_path / "clean").load())


def _latin1(data):
    """The file as a latin-1 editor saves it once line 3 holds an accent (every other byte is ASCII)."""
    rows = list(csv.reader(data.decode().splitlines()))
    rows[2][rows[0].index("device")] = "café"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("latin-1")


def _zipped(data, tmp_path):
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as z:
        z.writestr("results.csv", data)
    return (tmp_path / "z.zip").read_bytes()


@pytest.mark.parametrize("make,needle", [
    (lambda data, tmp: _latin1(data), "line 3: not UTF-8 text (byte 0xe9); save it as CSV UTF-8"),
    (lambda data, tmp: bytes(range(256)) * 4, "line 2: not UTF-8 text (byte 0x80)"),  # 0x0a ends line 1
    (lambda data, tmp: data[:40] + b"\x00\x01\x02" + data[40:], "line 1: a NUL byte: a binary file"),
    (_zipped, "line 1: a zip archive (an Excel .xlsx workbook?), not CSV text"),
    (lambda data, tmp: data.decode().encode("utf-16"), "line 1: UTF-16 text"),  # Excel's "Unicode Text"
    (lambda data, tmp: b"", "is empty: no header and no rows"),
    (lambda data, tmp: b"\r\n\r\n", "is empty: no header and no rows"),
    (lambda data, tmp: data.split(b"\n")[0] + b"\n", "holds a header but no result rows"),
])
def test_a_file_that_is_not_utf8_csv_is_refused_naming_file_and_line(exported, tmp_path, make, needle):
    store_dir = tmp_path / "here"
    import_results(exported, store_dir, known=known_names())
    before = snapshot(store_dir)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(make(exported.read_bytes(), tmp_path))
    for target in (store_dir, tmp_path / "new"):
        with pytest.raises(ResultsImportError) as e:
            import_results(bad, target, known=known_names())
        assert str(e.value).startswith(f"{bad} ") and needle in str(e.value)
        assert "\n" not in str(e.value)  # one line on the command line
    assert snapshot(store_dir) == before and not (tmp_path / "new").exists()


def test_a_folder_or_a_missing_file_is_a_path_error(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(BadPathError, match=r"folder\.csv is a folder; give the CSV file"):
        import_results(tmp_path / "folder.csv", tmp_path / "new", known=known_names())
    with pytest.raises(FileNotFoundError, match=r"nope\.csv does not exist") as e:
        read_results_file(tmp_path / "nope.csv", known=known_names())
    assert isinstance(e.value, BadPathError)  # exit 3, and still what callers catching FileNotFoundError expect
    assert not (tmp_path / "new").exists()


def test_check_reports_an_unreadable_file_instead_of_raising(exported, tmp_path):
    """`medbench check` turns every refusal into a finding the student can act on."""
    (tmp_path / "bad.csv").write_bytes(_latin1(exported.read_bytes()))
    for path, why in ((tmp_path / "bad.csv", "line 3: not UTF-8 text"), (tmp_path, "is a folder")):
        res = check_results(path, "domain-adaptation", "smoke")
        assert not res.ok and why in res.problems[0]


def test_export_refuses_a_folder_that_is_no_store_and_creates_nothing(tmp_path):
    out = tmp_path / "results.csv"
    for where in (tmp_path / "nostore", tmp_path / "typo" / "results"):
        with pytest.raises(BadPathError, match="no results store at .* \\(no runs/ folder\\); check --results-dir"):
            export_results(where, out)
        with pytest.raises(BadPathError, match="no results store at"):
            ResultsStore(where, create=False)
    assert not (tmp_path / "nostore").exists() and not (tmp_path / "typo").exists()
    (tmp_path / "other").mkdir()  # a folder that exists but holds no store stays untouched
    with pytest.raises(BadPathError, match="no results store at"):
        export_results(tmp_path / "other", out)
    assert list((tmp_path / "other").iterdir()) == [] and not out.exists()


def test_export_refuses_an_empty_store_and_bad_targets(source_store, tmp_path):
    empty = ResultsStore(tmp_path / "empty")
    with pytest.raises(BadValueError, match="the store at .*empty holds no runs"):
        export_results(empty, tmp_path / "results.csv")
    with pytest.raises(BadPathError, match="is a folder; give a file name such as"):
        export_results(source_store, tmp_path)
    with pytest.raises(BadPathError, match="the folder .*missing does not exist"):
        export_results(source_store, tmp_path / "missing" / "results.csv")
    with pytest.raises(BadPathError, match="inside the store's runs/ folder"):  # it would be read back as a run
        export_results(empty, empty.root / "runs" / "results.csv")
    assert not (tmp_path / "results.csv").exists() and not (tmp_path / "missing").exists()
    assert empty.hashes() == []


def test_export_of_a_profile_the_store_lacks_names_the_profiles_it_holds(source_store, tmp_path):
    """`--profile nosuch` must not write a file of 0 rows."""
    with pytest.raises(BadValueError) as e:
        export_results(source_store, tmp_path / "results.csv", profile="nosuch")
    assert "no runs on profile 'nosuch'; it holds runs on smoke" in str(e.value)
    assert not (tmp_path / "results.csv").exists()
    assert export_results(source_store.root, tmp_path / "results.csv", profile="smoke") == len(source_store.load())


def test_export_neutralises_a_formula_written_by_hand_into_the_store(source_store, exported, tmp_path):
    """A store can be edited by hand; the exported cell then starts with ' so a spreadsheet shows it as text."""
    shutil.copytree(source_store.root / "runs", tmp_path / "store" / "runs")
    store = ResultsStore(tmp_path / "store", create=False)
    h = store.hashes()[0]
    run = store.root / "runs" / f"{h}.csv"
    df = pd.read_csv(run, dtype=str, keep_default_na=False)
    df["git_sha"], df["device"] = '=HYPERLINK("http://x","y")', "@SUM(1)"
    df.to_csv(run, index=False)
    assert export_results(store, tmp_path / "out.csv") == len(source_store.load())
    got = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    clean = pd.read_csv(exported, dtype=str, keep_default_na=False)
    mine = got["config_hash"] == h
    assert (got.loc[mine, "git_sha"] == '\'=HYPERLINK("http://x","y")').all()
    assert (got.loc[mine, "device"] == "'@SUM(1)").all()
    # nothing else changed: other runs' cells, and every number and name of this one
    pd.testing.assert_frame_equal(got.loc[~mine], clean.loc[~mine])
    pd.testing.assert_frame_equal(got.drop(columns=["git_sha", "device"]), clean.drop(columns=["git_sha", "device"]))
    import_results(tmp_path / "out.csv", tmp_path / "again", known=known_names())  # no formula left to refuse
