"""What the notebooks show: tables, plots and widgets."""

# What this package's modules import inside their functions, on first use: a kernel started
# ahead for a notebook that imports one of them imports these too.
LAZY_IMPORTS = {
    "edgebook.notebook.views": ("matplotlib.pyplot", "matplotlib.dates", "edgebook.rules.usage"),
    "edgebook.notebook.plan_view": ("ipywidgets", "edgebook.evidence.records"),
    "edgebook.notebook.progress": ("ipywidgets",),
}
