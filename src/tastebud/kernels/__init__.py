"""Numba kernels: hot loops only, on contiguous integer indices (no ids, no I/O, no pandas)."""
