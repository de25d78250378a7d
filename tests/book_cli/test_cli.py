import subprocess
import sys

import pytest

from medbench_core.cli import main


def test_list_prints_every_registered_name(capsys):
    import medbench_core as mb

    for what, names in (("tasks", mb.list_tasks()), ("inits", mb.list_inits()),
                        ("sections", mb.list_sections()), ("profiles", mb.list_profiles())):
        assert main(["list", what]) == 0
        out = capsys.readouterr().out
        assert all(n in out for n in names), what


@pytest.mark.parametrize("argv,needle", [
    (["run", "domain-adaption", "--profile", "smoke"], "valid sections: granularity, self-supervised"),
    (["run", "domain-adaptation", "--profile", "laptop"],
     "valid profiles: auto (colab on a GPU, else demo), smoke, demo, colab, paper"),
    (["run", "domain-adaptation", "--profile", "smoke", "--tasks", "syn_dxc,dxc"], "valid tasks: syn_dxc"),
    (["run", "domain-adaptation", "--profile", "smoke", "--inits", "scratch,imagenett"], "valid inits: scratch"),
    (["run", "domain-adaptation", "--profile", "smoke", "--arch", "resnet5O"], "valid archs: test_resnet"),
])
def test_bad_names_exit_nonzero_with_the_valid_ones(argv, needle, capsys, tmp_path):
    code = main(argv + ["--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and needle in err
    assert not (tmp_path / "r" / "executed").exists()  # rejected before papermill started


def test_console_script_is_installed_and_fails_cleanly():
    out = subprocess.run([sys.executable, "-m", "medbench_core.cli", "run", "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown section 'nope'" in out.stderr and "Traceback" not in out.stderr


def test_list_archs_says_which_can_segment(capsys):
    assert main(["list", "archs"]) == 0
    lines = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()}
    assert lines["mini_vit"][1:3] == ["transformer", "no"] and lines["mini_swin"][1:3] == ["transformer", "yes"]
    assert lines["mini_convnext"][1:3] == ["convnet", "yes"]
