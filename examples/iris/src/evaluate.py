"""Score models/model.joblib on the test split: metrics.json and plots/confusion.csv."""

import json
from pathlib import Path

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

test = pd.read_csv("data/prepared/test.csv")
model = joblib.load("models/model.joblib")
truth = test["species"]
predicted = model.predict(test.drop(columns="species"))
metrics = {
    "accuracy": round(float(accuracy_score(truth, predicted)), 4),
    "f1_macro": round(float(f1_score(truth, predicted, average="macro")), 4),
    "test_rows": len(test),
}
Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
Path("plots").mkdir(exist_ok=True)
labels = sorted(truth.unique())
pd.DataFrame(
    confusion_matrix(truth, predicted, labels=labels), index=labels, columns=labels
).to_csv("plots/confusion.csv")
print(f"accuracy {metrics['accuracy']}, f1 {metrics['f1_macro']}")
