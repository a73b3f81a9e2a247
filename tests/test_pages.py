"""lib.pages: the Evidence page's tables as shown, the same numbers as lib.evidence's."""

import pandas as pd
import pytest

from lib import evidence, pages


def test_key_columns_come_first_the_others_keep_their_order():
    table = pd.DataFrame([[1, 2, 3, 4]], columns=["a", "n", "b", "replicated verdict"])
    assert list(pages.key_columns_first(table).columns) == ["replicated verdict", "n", "a", "b"]
    assert list(pages.key_columns_first(table[["a", "b"]]).columns) == ["a", "b"]


def test_heat_is_the_evidence_heat_table_with_the_verdict_first():
    shown, original = pages.heat(), evidence.heat()
    if original is None:
        pytest.skip("no evidence ledger recorded")
    assert list(shown.data.columns[:2]) == ["replicated verdict", "n"]
    assert sorted(shown.data.columns) == sorted(original.data.columns)
    pd.testing.assert_frame_equal(shown.data[original.data.columns], original.data)


def test_heat_without_a_ledger_is_none(tmp_path):
    assert pages.heat(tmp_path) is None
