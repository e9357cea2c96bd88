"""Tables: reading CSV, Parquet and JSON-lines files once, arrow columns as numpy arrays,
and the drift statistics (PSI and its bins, KS, chi-square) that checks and monitoring share."""
