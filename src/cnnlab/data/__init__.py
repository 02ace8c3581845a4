"""Datasets: bundled real data from installed packages, and images the user gives."""
