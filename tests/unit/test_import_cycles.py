"""No import cycles inside tdm_dagster, counting function-level imports too, and nothing
imports the code location's ``definitions`` module (the CLI builds its own through
``tdm_dagster.location``)."""

from pathlib import Path

from tests.support.import_graph import cycles, import_graph

PACKAGE = Path(__file__).resolve().parents[2] / "tdm_dagster"


def test_no_import_cycle_inside_the_package():
    graph = import_graph(PACKAGE)
    assert len(graph) > 80  # the scan found the package
    assert cycles(graph) == []


def test_nothing_imports_the_definitions_module():
    graph = import_graph(PACKAGE)
    assert sorted(m for m, targets in graph.items() if "tdm_dagster.definitions" in targets) == []


def test_the_scan_sees_a_function_level_cycle(tmp_path):
    package = tmp_path / "tdm_dagster"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from tdm_dagster.b import x\n")
    (package / "b.py").write_text("def x():\n    from tdm_dagster import a\n")
    assert cycles(import_graph(package)) == [["tdm_dagster.a", "tdm_dagster.b"]]
