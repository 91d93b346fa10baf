"""`make test`'s phase times (tests/conftest.py, ``--phase-times``): each test's time goes to its phase, and a
site build inside a test's set-up is a phase of its own (README "Timings")."""

from __future__ import annotations

import collections
import types

import conftest


def test_phase_of_a_test_and_of_a_notebook():
    assert conftest.phase_of("tests/test_bounds.py::test_x[1]") == "library tests"
    assert conftest.phase_of("book/ch01_phenomenon.ipynb::Cell 3") == "nbval ch01_phenomenon"
    assert conftest.phase_of("tests/test_browser.py::test_pages").startswith("browser")
    assert conftest.phase_of("tests/test_pdf.py::test_latex_log_is_clean").startswith("PDF")
    assert conftest.phase_of("tests/test_site.py::test_site_builds").startswith("site checks")


def test_a_site_build_in_a_set_up_is_its_own_phase(monkeypatch):
    seconds = collections.Counter()
    monkeypatch.setattr(conftest, "_phase_seconds", seconds)
    monkeypatch.setattr(conftest, "_site_build_pending", [40.0])

    def report(nodeid, when, duration):
        conftest.pytest_runtest_logreport(types.SimpleNamespace(nodeid=nodeid, when=when, duration=duration))

    report("tests/test_site.py::test_a", "setup", 41.0)  # the build ran in this set-up
    report("tests/test_site.py::test_a", "call", 2.0)
    report("tests/test_site.py::test_b", "setup", 0.5)  # built once: the next set-up is its own
    report("book/ch02_generalization_mi.ipynb::Cell 0", "call", 3.0)
    assert seconds == {conftest.SITE_BUILD: 40.0, conftest.phase_of("tests/test_site.py::x"): 3.5,
                       "nbval ch02_generalization_mi": 3.0}
