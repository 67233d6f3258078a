"""What the notebooks show: tables, plots and widgets."""
