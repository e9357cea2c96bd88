"""TF-IDF features of the prepared posts: data/features/train.pkl and test.pkl."""

import argparse
import pickle
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer

parser = argparse.ArgumentParser()
parser.add_argument("prepared")
parser.add_argument("features")
parser.add_argument("--max-features", type=int, required=True)
parser.add_argument("--ngrams", type=int, required=True)
args = parser.parse_args()


def read(name):
    rows = [line.rstrip("\n").split("\t", 2) for line in open(Path(args.prepared) / name)]
    return [int(label) for _, label, _ in rows], [text for _, _, text in rows]


train_labels, train_text = read("train.tsv")
test_labels, test_text = read("test.tsv")
vectorizer = TfidfVectorizer(max_features=args.max_features, ngram_range=(1, args.ngrams))
out = Path(args.features)
out.mkdir(parents=True, exist_ok=True)
for name, labels, matrix in (
    ("train", train_labels, vectorizer.fit_transform(train_text)),
    ("test", test_labels, vectorizer.transform(test_text)),
):
    with open(out / f"{name}.pkl", "wb") as handle:
        pickle.dump(
            {"labels": labels, "matrix": matrix, "words": list(vectorizer.get_feature_names_out())},
            handle,
        )
print(
    f"featurized {len(train_labels)} + {len(test_labels)} posts into {len(vectorizer.vocabulary_)} features"
)
