"""tests/mutation.py (make mutation): the module map, mutant names, the seeded sample, the config it writes."""

import tomllib

from tests import mutation


def test_every_measured_file_and_its_test_files_exist_and_no_notebook_or_sweep_test_is_run():
    for f, tests in mutation.MODULES.items():
        assert (mutation.ROOT / f).is_file(), f
        assert tests and all((mutation.ROOT / t).is_file() for t in tests), (f, tests)
        assert not {"tests/test_sweep.py", "tests/test_notebooks.py"} & set(tests)
    chapters = sorted(p.relative_to(mutation.ROOT).as_posix() for p in mutation.ROOT.glob("lib/chapters/*/claims.py"))
    assert set(chapters) <= set(mutation.MODULES)  # every chapter's claim code is measured
    assert set(mutation.ONLY_FUNCTIONS) <= set(mutation.MODULES)


def test_mutant_names_give_their_file_and_function():
    assert mutation.module_file("lib.chapters.ch01.claims.x_claims__mutmut_3") == "lib/chapters/ch01/claims.py"
    assert mutation.function_of("lib.spectrum.x_fit_power_law__mutmut_35") == "fit_power_law"
    assert mutation.function_of("lib.som.xǁSOMǁcodes__mutmut_1") == "SOM.codes"
    assert mutation.measured("lib.evidence.x_judge__mutmut_2")
    assert not mutation.measured("lib.evidence.x_build__mutmut_2")  # evidence: verdict functions only


def test_sample_is_seeded_per_file_and_bounded():
    names = [f"lib.spectrum.x_f__mutmut_{i}" for i in range(100)] + [f"lib.stats.x_g__mutmut_{i}" for i in range(5)]
    names += ["lib.sweep.x_h__mutmut_1", "lib.evidence.x_build__mutmut_1"]  # not measured
    a = mutation.sample(names, 10, seed=1)
    assert set(a) == {"lib/spectrum.py", "lib/stats.py"}
    assert len(a["lib/spectrum.py"]) == 10 and len(a["lib/stats.py"]) == 5
    assert a == mutation.sample(list(reversed(names)), 10, seed=1)  # the order given does not matter
    assert a != mutation.sample(names, 10, seed=2)


def test_score_counts_timeouts_as_killed_and_leaves_equivalents_out():
    chosen = {"lib/stats.py": ["a", "b", "c", "d", "e"]}
    results = {"a": 1, "b": 36, "c": 0, "d": 33, "e": 0}
    report = mutation.summarise(chosen, results, {"e"})
    row = report["files"]["lib/stats.py"]
    assert (row["killed"], row["timeout"], row["survived"], row["no tests"], row["equivalent"]) == (1, 1, 1, 1, 1)
    assert row["score"] == 0.5 and report["total"]["score"] == 0.5


def test_config_is_valid_toml_and_failed_tests_are_read_from_pytests_summary():
    text = mutation.mutmut_config(["lib/stats.py"], ["tests/test_stats.py"], ["book"], ["tests/test_stats.py::t"])
    cfg = tomllib.loads(text)["tool"]["mutmut"]
    assert cfg["only_mutate"] == ["lib/stats.py"] and cfg["pytest_add_cli_args_test_selection"] == [
        "tests/test_stats.py"
    ]
    assert cfg["pytest_add_cli_args"][-2:] == ["--deselect", "tests/test_stats.py::t"]
    log = "FAILED tests/test_a.py::test_x[1] - AssertionError\nERROR tests/test_b.py::test_y\nPASSED tests/c.py::z\n"
    assert mutation.failed_tests(log) == ["tests/test_a.py::test_x[1]", "tests/test_b.py::test_y"]
    assert mutation.mutated_line("--- a\n+++ b\n-    x = 1\n+    x = 2\n") == "x = 2"


def test_tests_taking_a_sweep_fixture_are_left_out(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_a(tiny_sweep, tmp_path):\n    pass\n\n\ndef test_b(tmp_path):\n    pass\n\n\n"
        "def test_c(tiny_sweeps):\n    pass\n\n\ndef helper(tiny_sweep):\n    pass\n"
    )
    assert mutation.sweep_tests(["tests/test_x.py"], tmp_path) == ["tests/test_x.py::test_a"]


def test_groups_join_files_that_share_a_test_file_and_keep_the_others_apart():
    """Each group is one mutmut run: files sharing a test file run together, every file in exactly one group."""
    parts = mutation.groups(list(mutation.MODULES))
    assert sorted(f for g in parts for f in g) == sorted(mutation.MODULES)
    assert ["lib/attacks.py", "lib/flip.py"] in parts  # test_flip.py covers both
    assert ["lib/claims.py", "lib/verdicts.py", "lib/evidence.py"] in parts  # joined through test_claims.py
    for a in parts:
        for b in parts:
            if a is not b:
                assert not {t for f in a for t in mutation.MODULES[f]} & {t for f in b for t in mutation.MODULES[f]}
    assert mutation.groups(["lib/evidence.py", "lib/claims.py"]) == [
        ["lib/claims.py"],
        ["lib/evidence.py"],
    ]  # no verdicts
    assert mutation.groups(["lib/som.py", "lib/stats.py"]) == [["lib/som.py"], ["lib/stats.py"]]
