"""What the notebooks show: tables, plots and widgets."""

# imported inside this package's functions, on first use: a kernel started ahead imports them too
LAZY_IMPORTS = ("ipywidgets", "matplotlib.pyplot", "matplotlib.dates")
