"""The runner's HTML exporter: remembered filters render exactly what nbconvert renders, and
it is built ahead in the background once per process."""

from __future__ import annotations

import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters import Highlight2HTML

from edgebook.evidence import runner


def _sample() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    html_out = nbformat.v4.new_output(
        "display_data", data={"text/html": "<table><tr><td onclick='x()'>a</td></tr></table>"}
    )
    svg_out = nbformat.v4.new_output(
        "display_data", data={"image/svg+xml": "<svg><script>x()</script><rect/></svg>"}
    )
    magic = nbformat.v4.new_code_cell("%%bash\necho <b>", metadata={"magics_language": "bash"})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title <script>alert(1)</script>"),
        nbformat.v4.new_code_cell("x = '<b>' # comment\nprint(x)", outputs=[html_out]),
        nbformat.v4.new_code_cell("", outputs=[svg_out]),
        magic,
    ]
    return nb


def _plain_exporter() -> HTMLExporter:
    from jinja2 import DictLoader

    return HTMLExporter(
        extra_loaders=[DictLoader({"edgebook.html.j2": runner._HTML_TEMPLATE})],
        template_file="edgebook.html.j2",
        filters={"highlight_code": Highlight2HTML(pygments_lexer="ipython3")},
    )


def test_remembered_filters_render_what_nbconvert_renders():
    nb = _sample()
    expected, _ = _plain_exporter().from_notebook_node(nb)
    first, _ = runner._html_exporter().from_notebook_node(nb)
    again, _ = runner._html_exporter().from_notebook_node(nb)
    assert first == expected
    assert again == expected


def test_a_second_render_of_the_same_cells_is_served_from_memory():
    nb = _sample()
    runner._html_exporter().from_notebook_node(nb)
    highlighted, cleaned = runner._highlighted.cache_info(), runner._cleaned.cache_info()
    runner._html_exporter().from_notebook_node(nb)
    assert runner._highlighted.cache_info().hits == highlighted.hits + 3  # the code cells
    assert runner._highlighted.cache_info().misses == highlighted.misses
    assert runner._cleaned.cache_info().misses == cleaned.misses


def test_the_exporter_is_built_ahead_once_per_process():
    thread = runner.warm_rendering()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert runner._html_exporter.cache_info().currsize == 1
    assert runner.warm_rendering() is thread  # no second warm-up
