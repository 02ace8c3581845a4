"""Figures and tables: model summaries, training curves, confusion matrices, edge maps."""
