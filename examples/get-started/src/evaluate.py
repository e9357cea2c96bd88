"""Score the model on the test features: eval/metrics.json, eval/plots/ (ROC and
precision-recall points, confusion pairs) and eval/importance.csv."""

import argparse
import csv
import json
import pickle
from pathlib import Path

from sklearn import metrics

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("features")
args = parser.parse_args()

with open(args.model, "rb") as handle:
    model = pickle.load(handle)
with open(Path(args.features) / "test.pkl", "rb") as handle:
    test = pickle.load(handle)
scores = model.predict_proba(test["matrix"])[:, 1]
predicted = model.predict(test["matrix"])
labels = test["labels"]

out = Path("eval")
plots = out / "plots"
plots.mkdir(parents=True, exist_ok=True)
summary = {
    "avg_prec": round(float(metrics.average_precision_score(labels, scores)), 6),
    "roc_auc": round(float(metrics.roc_auc_score(labels, scores)), 6),
    "accuracy": round(float(metrics.accuracy_score(labels, predicted)), 6),
}
(out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")


def write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


fpr, tpr, _ = metrics.roc_curve(labels, scores)
write_csv(plots / "roc.csv", ["fpr", "tpr"], zip(fpr.round(6), tpr.round(6)))
precision, recall, _ = metrics.precision_recall_curve(labels, scores)
write_csv(plots / "prc.csv", ["precision", "recall"], zip(precision.round(6), recall.round(6)))
write_csv(plots / "confusion.csv", ["actual", "predicted"], zip(labels, predicted))
ranked = sorted(zip(test["words"], model.feature_importances_), key=lambda p: -p[1])[:20]
write_csv(
    out / "importance.csv", ["feature", "importance"], ((w, round(float(v), 6)) for w, v in ranked)
)
print(json.dumps(summary))
