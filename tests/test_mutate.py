"""The mutation runner (tools/mutate.py): its list checks and how it applies one mutation."""

from __future__ import annotations

import json

import pytest

from tools import mutate


def _list(tmp_path, **over):
    m = dict(id="x", target="lib/poprisk/bounds.py", find="LN2 = math.log(2.0)",
             replace="LN2 = math.log(4.0)", why="w", tests=["tests/test_bounds.py"], notebooks=[])
    m.update(over)
    path = tmp_path / "m.toml"
    path.write_text("[[mutation]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in m.items()))
    return path


def test_load_checks_fields_and_targets(tmp_path):
    assert mutate.load([_list(tmp_path)])[0]["id"] == "x"
    with pytest.raises(ValueError, match="is not a file"):
        mutate.load([_list(tmp_path, target="lib/nothing.py")])
    with pytest.raises(ValueError, match="not a mutation"):
        mutate.load([_list(tmp_path, replace="LN2 = math.log(2.0)")])
    with pytest.raises(ValueError, match="names no tests"):
        mutate.load([_list(tmp_path, tests=[])])


def test_find_must_occur_exactly_once(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\nx = 1\ny = 2\n")
    with pytest.raises(ValueError, match="occurs 2 times"):
        mutate.apply(dict(id="d", target="a.py", find="x = 1", replace="x = 2"), tmp_path)
    with pytest.raises(ValueError, match="occurs 0 times"):
        mutate.apply(dict(id="d", target="a.py", find="z", replace="w"), tmp_path)
    mutate.apply(dict(id="d", target="a.py", find="y = 2", replace="y = 3"), tmp_path)
    assert (tmp_path / "a.py").read_text() == "x = 1\nx = 1\ny = 3\n"


def test_notebook_mutation_touches_code_cells_only(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["a = 1\n"], "metadata": {}},
                    {"cell_type": "code", "source": ["a = 1\n", "b = 2\n"], "metadata": {},
                     "outputs": [], "execution_count": None}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    m = dict(id="n", target="n.ipynb", find="a = 1", replace="a = 2")
    assert mutate.occurrences(m, tmp_path) == 1
    mutate.apply(m, tmp_path)
    cells = json.loads((tmp_path / "n.ipynb").read_text())["cells"]
    assert cells[0]["source"] == ["a = 1\n"] and cells[1]["source"] == "a = 2\nb = 2\n"


def test_pytest_args_always_run_a_notebook_target():
    args = mutate.pytest_args(dict(target="book/x.ipynb", tests=["tests/t.py"], notebooks=[]))
    assert args[:2] == ["tests/t.py", "book/x.ipynb"] and "--nbval-lax" in args
    assert mutate.pytest_args(dict(target="lib/a.py", tests=["tests/t.py"], notebooks=[])) == ["tests/t.py"]


def test_mutation_factory_makes_the_list_format():
    m = mutate.mutation("i", "lib/a.py", "x", "y", "w", tests=("tests/t.py",))
    assert m == dict(id="i", target="lib/a.py", find="x", replace="y", why="w", tests=["tests/t.py"],
                     notebooks=[])
    with pytest.raises(TypeError, match="`find` must be a non-empty string"):
        mutate.mutation("i", "lib/a.py", "", "y", "w")
    with pytest.raises(TypeError, match="`notebooks` must be a sequence"):
        mutate.mutation("i", "lib/a.py", "x", "y", "w", notebooks="book/x.ipynb")


def test_load_refuses_a_list_that_is_not_toml_or_has_unknown_fields(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[mutation]\nid = 1\n")
    with pytest.raises(ValueError, match="bad.toml: not a readable mutation list"):
        mutate.load([bad])
    with pytest.raises(ValueError, match="unknown"):
        mutate.load([_list(tmp_path, extra="x")])
    with pytest.raises(ValueError, match="lacks"):
        path = _list(tmp_path)
        path.write_text(path.read_text().replace('why = "w"\n', ""))
        mutate.load([path])
