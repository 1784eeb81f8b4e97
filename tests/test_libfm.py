"""libFM / libsvm reader and writer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from tastebud.data.libfm import read_libfm, write_libfm
from tastebud.exceptions import DataError


@pytest.mark.parametrize("zero_based", [True, False])
def test_round_trip_is_exact(tmp_path, zero_based):
    rng = np.random.default_rng(0)
    X = sp.random(50, 30, density=0.2, random_state=1, data_rvs=lambda n: rng.normal(size=n) * 1e3).tocsr()
    y = rng.normal(size=50)
    y[::3] = np.round(y[::3])
    p = tmp_path / "a.libfm"
    write_libfm(p, X, y, zero_based=zero_based)
    X2, y2 = read_libfm(p, n_features=30, zero_based=zero_based)
    np.testing.assert_array_equal(y, y2)
    assert X2.shape == X.shape and (X2 != X).nnz == 0
    np.testing.assert_array_equal(X2.toarray(), X.toarray())


def test_comments_blank_lines_and_width(tmp_path):
    p = tmp_path / "b.libfm"
    p.write_text("# header\n1 0:1 3:0.5\n\n-1 2:2  # trailing\n0\n")
    X, y = read_libfm(p)
    np.testing.assert_array_equal(y, [1, -1, 0])
    np.testing.assert_array_equal(X.toarray(), [[1, 0, 0, 0.5], [0, 0, 2, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize("body,msg", [
    ("1 0:1\nabc 1:1\n", r"b\.libfm:2: label 'abc'"),
    ("1 0:1\n1 1:1 2\n", r":2: expected index:value"),
    ("1 x:1\n", r":1: feature index 'x'"),
    ("1 1:y\n", r":1: value 'y'"),
    ("1 1:1 1:2\n", r":1: feature index 1 appears twice"),
    ("1 -1:1\n", r":1: feature index -1 is below"),
    ("1 9:1\n", r":1: feature index 9 is out of range"),
    ("1 1:nan\n", r":1: value 'nan'"),
    ("# nothing\n", r"no examples"),
])
def test_errors_name_file_and_line(tmp_path, body, msg):
    p = tmp_path / "b.libfm"
    p.write_text(body)
    with pytest.raises(DataError, match=msg):
        read_libfm(p, n_features=5)


def test_missing_file_and_bad_write(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_libfm(tmp_path / "none")
    with pytest.raises(DataError, match="one label per row"):
        write_libfm(tmp_path / "c", sp.csr_matrix(np.ones((3, 2))), np.ones(2))


def test_frappe_files_if_present():
    d = os.environ.get("TASTEBUD_DATA")
    f = Path(d or "") / "frappe" / "frappe.test.libfm"
    if not d or not f.exists():
        pytest.skip("TASTEBUD_DATA not set or frappe missing")
    X, y = read_libfm(f, n_features=5382)
    assert X.shape == (28860, 5382)
    assert set(np.unique(y)) == {-1.0, 1.0}
    np.testing.assert_array_equal(np.diff(X.indptr), 10)  # 10 one-hot fields per row
