import numpy as np

from tastebud.kernels.linalg import cholesky_solve_inplace


def test_cholesky_solve_matches_numpy_and_flags_indefinite():
    rng = np.random.default_rng(0)
    for d in (1, 3, 17):
        M = rng.standard_normal((d + 5, d))
        A = M.T @ M + 0.1 * np.eye(d)
        b = rng.standard_normal(d)
        A2, b2 = A.copy(), b.copy()
        assert cholesky_solve_inplace(A2, b2, d)
        np.testing.assert_allclose(b2, np.linalg.solve(A, b), rtol=1e-9, atol=1e-9)
    bad = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    assert not cholesky_solve_inplace(bad, np.ones(2), 2)
