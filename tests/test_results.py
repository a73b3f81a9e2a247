"""lib.results: a reader sees one short line where a run records its results; the ledger gets them all."""

from lib import results


def test_the_reader_sees_counts_not_a_dump_of_values():
    values = {"claim:ch01.a:estimate": 0.5, "claim:ch01.a:verdict": "holds", "claim:ch01.b:lo": 0.1, "alpha": 1.2}
    assert results.summary(values) == "(recorded for the evidence ledger: 2 claims and 1 number)"
    assert results.summary({"x": 1, "y": 2}) == "(recorded for the evidence ledger: 2 numbers)"
    assert results.summary({}) == "(recorded for the evidence ledger: nothing)"
    assert len(results.summary({f"claim:ch02.c{i}:estimate": 1.0 for i in range(40)})) < 80
