"""Fit a random forest on data/train.csv; save models/model.joblib."""

from pathlib import Path

import joblib
import pandas as pd
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
train = pd.read_csv("data/train.csv")
encode = ColumnTransformer(
    [("line", OneHotEncoder(handle_unknown="ignore"), ["line"])], remainder="passthrough"
)
forest = RandomForestClassifier(
    n_estimators=params["n_estimators"],
    max_depth=params["max_depth"],
    random_state=params["seed"],
)
model = make_pipeline(encode, forest)
model.fit(train.drop(columns="failure"), train["failure"])
Path("models").mkdir(exist_ok=True)
joblib.dump(model, "models/model.joblib")
print(f"trained on {len(train)} rows")
