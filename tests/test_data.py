import json

import numpy as np
import pytest

from fedhft_secure.data import assign_levels, dirichlet_partition, load_dataset, split_clients, train_test_split
from fedhft_secure.exceptions import DataError


def test_rotten_tomatoes_bundled():
    ds = load_dataset("rotten_tomatoes")
    assert ds.label_names == ("rotten", "fresh")
    assert 12_000 < len(ds) <= 12_808
    assert len(set(ds.texts)) == len(ds)
    assert 0.55 < ds.labels.mean() < 0.62  # share of "fresh"


def test_tweets_bundled():
    ds = load_dataset("tweets")
    assert ds.label_names == ("negative", "neutral", "positive")
    assert len(ds) > 10_000 and set(np.unique(ds.labels)) == {0, 1, 2}


def test_user_csv_jsonl_and_hf_disk(tmp_path):
    rows = [{"sentence": f"text number {i}", "y": "pos" if i % 3 else "neg"} for i in range(30)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "d.csv").write_text("sentence,y\n" + "\n".join(f"{r['sentence']},{r['y']}" for r in rows))
    for name, f in (("jsonl", "d.jsonl"), ("csv", "d.csv")):
        ds = load_dataset(name, str(tmp_path / f), "sentence", "y")
        assert len(ds) == 30 and ds.label_names == ("neg", "pos")
    with pytest.raises(DataError, match="no column"):
        load_dataset("csv", str(tmp_path / "d.csv"), "text", "y")
    import datasets

    hf = datasets.Dataset.from_list(rows).class_encode_column("y")
    hf.save_to_disk(str(tmp_path / "hf"))
    ds = load_dataset("hf_disk", str(tmp_path / "hf"), "sentence", "y")
    assert len(ds) == 30 and ds.label_names == ("neg", "pos")


def test_split_and_partition_are_seeded():
    labels = np.random.default_rng(0).integers(0, 3, 900)
    a = dirichlet_partition(labels, 10, 1.0, np.random.default_rng(5))
    b = dirichlet_partition(labels, 10, 1.0, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    allidx = np.sort(np.concatenate(a))
    assert np.array_equal(allidx, np.arange(900))  # a partition: every example once
    # low concentration -> label skew: clients' label shares differ a lot
    shares = [np.bincount(labels[p], minlength=3) / len(p) for p in a]
    assert np.ptp([s[0] for s in shares]) > 0.3
    splits = split_clients(a, 0.2, np.random.default_rng(1))
    for p, s in zip(a, splits):
        assert len(np.intersect1d(s.train, s.val)) == 0 and len(s.train) + len(s.val) == len(p)


def test_test_split_is_fixed():
    ds = load_dataset("rotten_tomatoes")
    _, t1 = train_test_split(ds, 100, 0)
    _, t2 = train_test_split(ds, 100, 0)
    assert t1.texts == t2.texts
    with pytest.raises(DataError):
        train_test_split(ds, len(ds), 0)


def test_levels_by_ratio():
    lv = assign_levels(8, [1.0, 0.5], [0.5, 0.5], np.random.default_rng(0))
    assert sorted(lv) == [0.5] * 4 + [1.0] * 4
    lv = assign_levels(7, [1.0, 0.5, 0.25], [0.4, 0.3, 0.3], np.random.default_rng(0))
    assert len(lv) == 7 and lv.count(1.0) == 2
