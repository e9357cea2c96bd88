"""Score models/model.joblib on data/test.csv: metrics.json."""

import json
from pathlib import Path

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

test = pd.read_csv("data/test.csv")
model = joblib.load("models/model.joblib")
predicted = model.predict(test.drop(columns="failure"))
metrics = {
    "accuracy": round(float(accuracy_score(test["failure"], predicted)), 4),
    "f1": round(float(f1_score(test["failure"], predicted)), 4),
}
Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(f"accuracy {metrics['accuracy']}, f1 {metrics['f1']}")
