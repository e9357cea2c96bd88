"""Fit a random forest on the training features: model.pkl."""

import argparse
import pickle
from pathlib import Path

from sklearn.ensemble import RandomForestClassifier

parser = argparse.ArgumentParser()
parser.add_argument("features")
parser.add_argument("model")
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--n-est", type=int, required=True)
parser.add_argument("--min-split", type=float, required=True)
args = parser.parse_args()

with open(Path(args.features) / "train.pkl", "rb") as handle:
    train = pickle.load(handle)
model = RandomForestClassifier(
    n_estimators=args.n_est, min_samples_split=args.min_split, random_state=args.seed, n_jobs=1
)
model.fit(train["matrix"], train["labels"])
with open(args.model, "wb") as handle:
    pickle.dump(model, handle)
print(f"trained {args.n_est} trees")
