"""Plots across revisions: the plot files stages declare, drawn into one HTML page."""
