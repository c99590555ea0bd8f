"""Real e-mail spam (OpenIntro's `email` table, CC BY-SA 3.0; attribution in
_data/openintro_email.LICENSE.md): 3,921 e-mails, 367 of them spam (9.4%).

The 20 raw columns become 22 numeric features:
- the 0/1 and count columns as they are (num_char in thousands of characters);
- `winner` ("yes"/"no") as 1/0;
- `number` ("none", "small", "big": the largest number in the message) one-hot encoded as
  number_none, number_small, number_big;
- `time` (ISO 8601, UTC) as `hour`, the hour of day 0-23 in UTC (the date itself, three
  months of 2012, says nothing about other mail).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io

import numpy as np

from .loaders import DATA_DIR
from .preprocessing import train_test_split

SPAM_FILE = ("openintro_email.csv.gz", "e8b29c90bba7023446fbd71f6ffe6439")
SPAM_SHAPE = (3921, 22)
NUMBER_LEVELS = ("none", "small", "big")
FEATURE_NAMES = ("to_multiple", "from", "cc", "sent_email", "image", "attach", "dollar",
                 "winner", "inherit", "viagra", "password", "num_char", "line_breaks", "format",
                 "re_subj", "exclaim_subj", "urgent_subj", "exclaim_mess",
                 *(f"number_{level}" for level in NUMBER_LEVELS), "hour")
# Counts and sizes with long right tails: log1p before scaling suits them.
COUNT_FEATURES = ("cc", "image", "attach", "dollar", "inherit", "viagra", "password",
                  "num_char", "line_breaks", "exclaim_mess")


def _rows():
    raw = (DATA_DIR / SPAM_FILE[0]).read_bytes()
    digest = hashlib.md5(raw).hexdigest()
    if digest != SPAM_FILE[1]:
        raise ValueError(f"{SPAM_FILE[0]}: md5 {digest} does not match the expected "
                         f"{SPAM_FILE[1]}; the packaged file is damaged (reinstall nnfast)")
    text = gzip.decompress(raw).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _features(row: dict) -> list[float]:
    values = []
    for name in FEATURE_NAMES:
        if name == "winner":
            values.append(1.0 if row["winner"] == "yes" else 0.0)
        elif name.startswith("number_"):
            values.append(1.0 if row["number"] == name[len("number_"):] else 0.0)
        elif name == "hour":
            values.append(float(row["time"][11:13]))  # YYYY-MM-DDTHH:MM:SSZ
        else:
            values.append(float(row[name]))
    return values


def load_spam(as_frame: bool = False):
    """(X, y, feature_names): X float64 (3921, 22), y int64 (3921,) with 1 = spam, and the 22
    feature names (see the module's docstring for how the raw columns map to them).
    as_frame=True gives X as a pandas DataFrame with those columns and y as a Series named
    "spam" (pandas needed)."""
    rows = _rows()
    X = np.array([_features(row) for row in rows], dtype=np.float64)
    y = np.array([int(row["spam"]) for row in rows], dtype=np.int64)
    if X.shape != SPAM_SHAPE:
        raise ValueError(f"{SPAM_FILE[0]}: unexpected shape {X.shape}")
    names = list(FEATURE_NAMES)
    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("load_spam(as_frame=True) needs pandas (pip install pandas); "
                              "as_frame=False returns NumPy arrays") from exc
        return pd.DataFrame(X, columns=names), pd.Series(y, name="spam"), names
    return X, y, names


def load_spam_split(test_size: float = 0.25, seed=0, dtype=np.float64):
    """((X_train, y_train), (X_test, y_test)): load_spam() split with the spam fraction kept
    in both parts (stratified), test_size of the e-mails held out, the split drawn from
    `seed`. X of `dtype`, unscaled."""
    X, y, _ = load_spam()
    X_train, X_test, y_train, y_test = train_test_split(X.astype(dtype), y, test_size=test_size,
                                                        stratify=y, random_state=seed)
    return (X_train, y_train), (X_test, y_test)
