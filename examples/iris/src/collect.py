"""Write the raw iris measurements to data/raw.csv (the data set ships with scikit-learn)."""

from pathlib import Path

from sklearn.datasets import load_iris

frame = load_iris(as_frame=True).frame
frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
Path("data").mkdir(exist_ok=True)
frame.to_csv("data/raw.csv", index=False)
print(f"collected {len(frame)} rows into data/raw.csv")
