"""Review-style data loaders: Amazon JSON lines and generic CSV / JSON lines with a column mapping."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from tastebud.data.reviews import read_amazon_reviews, read_reviews, reviews_to_interactions
from tastebud.exceptions import DataError

AMAZON = [
    {"reviewerID": "A1", "asin": "B001", "overall": 5.0, "reviewText": "Great game, loved it", "summary": "Great",
     "unixReviewTime": 1400000000, "vote": "1,234", "style": {"Format:": " Disc"}},
    {"reviewerID": "A2", "asin": "B001", "overall": 2.0, "summary": "Meh", "unixReviewTime": 1400000100},
    {"reviewerID": "A1", "asin": "B002", "overall": 4.0, "reviewText": "Fun", "summary": "",
     "unixReviewTime": 1400000200, "verified": True},
]


def write_jsonl(path, recs, gz=False):
    data = "\n".join(json.dumps(r) for r in recs) + "\n\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_amazon_json_lines(tmp_path, gz):
    p = write_jsonl(tmp_path / ("r.json.gz" if gz else "r.json"), AMAZON + [AMAZON[0]], gz=gz)
    df = read_amazon_reviews(p, keep=["vote", "style", "verified"])
    assert list(df.columns[:6]) == ["user", "item", "rating", "text", "summary", "timestamp"]
    assert len(df) == 3  # the exact repeat is dropped
    assert df["user"].tolist() == ["A1", "A2", "A1"]
    assert df["rating"].tolist() == [5.0, 2.0, 4.0]
    assert df["text"].tolist() == ["Great game, loved it", "", "Fun"]  # missing text -> ""
    assert df["timestamp"].tolist() == [1400000000, 1400000100, 1400000200]
    assert df["vote"].tolist() == [1234.0, 0.0, 0.0]
    assert json.loads(df["style"].iloc[0]) == {"Format:": " Disc"}
    assert len(read_amazon_reviews(p, dedupe=False)) == 4
    assert read_amazon_reviews(p, min_rating=4)["item"].tolist() == ["B001", "B002"]


def test_amazon_errors_name_the_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(AMAZON[0]) + "\n{not json\n")
    with pytest.raises(DataError, match="line 2"):
        read_amazon_reviews(p)
    p.write_text(json.dumps(AMAZON[0]) + "\n" + json.dumps({"asin": "B1", "overall": 3}) + "\n")
    with pytest.raises(DataError, match="line 2.*reviewerID"):
        read_amazon_reviews(p)
    (tmp_path / "empty.json").write_text("\n")
    with pytest.raises(DataError, match="no reviews"):
        read_amazon_reviews(tmp_path / "empty.json")
    with pytest.raises(FileNotFoundError):
        read_amazon_reviews(tmp_path / "nope.json")


def test_generic_csv_with_mapping_and_dates(tmp_path):
    p = tmp_path / "yelp.csv"
    pd.DataFrame({"user_id": ["u1", "u2"], "business_id": ["b1", "b2"], "stars": [4, 1],
                  "body": ["Nice tacos", None], "date": ["2020-01-01 00:00:00", "2020-01-02"],
                  "city": ["Austin", "Reno"]}).to_csv(p, index=False)
    df = read_reviews(p, columns={"user": "user_id", "item": "business_id", "rating": "stars", "text": "body",
                                  "timestamp": "date"}, keep=["city"])
    assert df["rating"].tolist() == [4.0, 1.0]
    assert df["text"].tolist() == ["Nice tacos", ""]
    assert df["timestamp"].tolist() == [1577836800, 1577923200]
    assert df["city"].tolist() == ["Austin", "Reno"]
    inter = reviews_to_interactions(df)
    assert inter.nnz == 2 and inter.n_users == 2
    with pytest.raises(DataError, match="'stars_x'"):
        read_reviews(p, columns={"user": "user_id", "item": "business_id", "rating": "stars_x"})
    with pytest.raises(DataError, match="'user'"):
        read_reviews(p)  # user column not mapped and not present
    with pytest.raises(ValueError, match="standard names"):
        read_reviews(p, columns={"stars": "stars"})


def test_generic_jsonl_and_bad_rating(tmp_path):
    p = write_jsonl(tmp_path / "r.jsonl", [{"user": 1, "item": 10, "rating": 3.5, "text": "ok"},
                                           {"user": 2, "item": 11, "rating": "five", "text": "x"}])
    with pytest.raises(DataError, match="row 1"):
        read_reviews(p)
    p = write_jsonl(tmp_path / "r2.jsonl", [{"user": 1, "item": 10, "rating": 3.5, "text": "ok"}])
    df = read_reviews(p)
    assert df.to_dict("records") == [{"user": 1, "item": 10, "rating": 3.5, "text": "ok"}]


def test_reviews_feed_the_multimodal_model(tmp_path):
    pytest.importorskip("torch")
    from tastebud.models.multimodal.model import MultimodalModel

    rng = np.random.default_rng(0)
    recs = []
    for n in range(400):
        good = rng.random() < 0.5
        recs.append({"reviewerID": f"U{rng.integers(30)}", "asin": f"I{rng.integers(40)}",
                     "overall": float(rng.choice([4, 5]) if good else rng.choice([1, 2])),
                     "reviewText": "wonderful delicious would return" if good else "cold rude slow never again",
                     "summary": "", "unixReviewTime": 1400000000 + n})
    df = read_amazon_reviews(write_jsonl(tmp_path / "rev.json", recs))
    m = MultimodalModel(fields={"user": "id", "item": "id", "text": "text"}, epochs=20, batch_size=64, lr=1e-2,
                        factors=8, hidden=(8,), n_buckets=1024).fit(df.iloc[:300])
    test = df.iloc[300:]
    err = np.sqrt(np.mean((m.predict(test) - test["rating"]) ** 2))
    assert err < 0.6  # the text alone separates 1-2 from 4-5 stars (std of ratings ~1.7)
