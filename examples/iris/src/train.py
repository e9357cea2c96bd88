"""Fit a random forest on data/prepared/train.csv; save models/model.joblib."""

from pathlib import Path

import joblib
import pandas as pd
import yaml
from sklearn.ensemble import RandomForestClassifier

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
train = pd.read_csv("data/prepared/train.csv")
model = RandomForestClassifier(
    n_estimators=params["n_estimators"],
    max_depth=params["max_depth"],
    random_state=params["seed"],
)
model.fit(train.drop(columns="species"), train["species"])
Path("models").mkdir(exist_ok=True)
joblib.dump(model, "models/model.joblib")
print(f"trained {params['n_estimators']} trees of depth {params['max_depth']}")
