"""tools/release.py: stamping is idempotent and touches only cell 0 and the notebook metadata; a release
updates the version, the changelog and CITATION.cff consistently (all on copies in a temporary folder)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import nbformat
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import release, timeouts  # noqa: E402
from tools.new_notebook import bootstrap_source, version  # noqa: E402

NOTEBOOKS = sorted((ROOT / "book").glob("ch*.ipynb"))


@pytest.fixture()
def copies(tmp_path):
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / path.name)
    return sorted(tmp_path.glob("*.ipynb"))


def test_stamp_touches_only_cell0_and_metadata_and_is_idempotent(copies):
    originals = {p: json.loads(p.read_text()) for p in copies}
    release.stamp(copies, "v9.8.7")
    first = {p: p.read_text() for p in copies}
    assert release.stamp(copies, "v9.8.7") == [], "a second stamp changed files"
    assert {p: p.read_text() for p in copies} == first
    for path in copies:
        new, old = json.loads(path.read_text()), originals[path]
        boot = 1 if "google.colab" in "".join(old["cells"][0]["source"]) else 0
        assert new["cells"][1:] == old["cells"][boot:], f"{path.name}: a cell other than cell 0 changed"
        assert {k: v for k, v in new.items() if k not in ("cells", "metadata")} == \
            {k: v for k, v in old.items() if k not in ("cells", "metadata")}
        assert "@v9.8.7" in "".join(new["cells"][0]["source"])
        assert "remove-cell" in new["cells"][0]["metadata"]["tags"]
        assert (new["metadata"].get("accelerator") == "GPU") == release.wants_gpu(path)
    assert release.unstamped(copies, "v9.8.7") == []
    assert release.unstamped(copies, "v0.0.1"), "check must notice a notebook pinned to another ref"


def test_gpu_chapters_get_colab_gpu_runtime(copies):
    release.stamp(copies, "v1.0.0")
    gpu = {p.name.split("_")[0] for p in copies if nbformat.read(p, 4).metadata.get("colab", {}).get("gpuType")}
    assert gpu == {p.name.split("_")[0] for p in copies} & set(release.GPU_CHAPTERS)
    assert {"ch01", "ch07", "ch08", "ch09"} <= gpu


def test_stamp_inserts_a_missing_bootstrap(tmp_path):
    path = tmp_path / "ch10_new.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 10. New")]), path)
    release.stamp([path], "v1.2.3")
    nb = nbformat.read(path, 4)
    assert nb.cells[0].source == bootstrap_source(ref="v1.2.3") and nb.cells[1].source == "# 10. New"
    assert nb.metadata["accelerator"] == "GPU"


def test_release_updates_version_changelog_citation(tmp_path, monkeypatch):
    for name in ("CHANGELOG.md", "CITATION.cff"):
        shutil.copy(ROOT / name, tmp_path / name)
    init = tmp_path / "__init__.py"
    shutil.copy(ROOT / "lib" / "poprisk" / "__init__.py", init)
    nb = tmp_path / "ch01_x.ipynb"
    shutil.copy(NOTEBOOKS[0], nb)
    monkeypatch.setattr(release, "INIT", init)
    monkeypatch.setattr(release, "CHANGELOG", tmp_path / "CHANGELOG.md")
    monkeypatch.setattr(release, "CITATION", tmp_path / "CITATION.cff")
    monkeypatch.setattr(release, "book_notebooks", lambda: [nb])
    with pytest.raises(ValueError, match="VERSION"):
        release.release("v1.2", tag=False)
    assert release.release("3.4.5", tag=False, date="2030-01-02") == "v3.4.5"
    assert '__version__ = "3.4.5"' in init.read_text()
    log = (tmp_path / "CHANGELOG.md").read_text()
    assert "## [Unreleased]\n\n## [3.4.5] - 2030-01-02" in log
    cff = yaml.safe_load((tmp_path / "CITATION.cff").read_text())
    assert cff["version"] == "3.4.5" and str(cff["date-released"]) == "2030-01-02"
    assert "@v3.4.5" in nbformat.read(nb, 4).cells[0].source
    release.release("3.4.5", tag=False, date="2030-01-02")  # again: nothing doubles
    assert (tmp_path / "CHANGELOG.md").read_text() == log


def test_one_version_string():
    import poprisk

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert poprisk.__version__ == version() == cff["version"]
    assert 'version = { attr = "poprisk.__version__" }' in (ROOT / "pyproject.toml").read_text()


# ------------------------------------------------------------------ hostile versions, injection, git state

BAD_VERSIONS = ["1.2.3\n", "1.2.3 ", " 1.2.3", "v1.2.3", "1.2", "1.2.3.4", "01.2.3", "1.2.3-rc1", "",
                "\uff11.2.3", "1.\u0662.3", "1.2.\u00b3", "1.2.3; touch X", "1.2.3 --no-tag"]


@pytest.mark.parametrize("bad", BAD_VERSIONS, ids=ascii)
def test_a_malformed_version_is_refused(bad):
    with pytest.raises(ValueError, match="VERSION"):
        release.check_version(bad)


@pytest.mark.parametrize("bad", [None, 123, 1.2, b"1.2.3"], ids=repr)
def test_a_version_that_is_not_a_string_is_refused(bad):
    with pytest.raises(TypeError, match="VERSION"):
        release.check_version(bad)


@pytest.fixture()
def clone(tmp_path):
    """A small git repository with the release machinery (tools, Makefile, the versioned files, one notebook)
    and the shared venv, so `make release` runs for real without touching this checkout."""
    repo = tmp_path / "repo"
    for rel in ("Makefile", "_config.yml", "CHANGELOG.md", "CITATION.cff", "lib/poprisk/__init__.py",
                "tools/__init__.py", "tools/release.py", "tools/new_notebook.py",
                "requirements.txt", "pyproject.toml", NOTEBOOKS[0].relative_to(ROOT)):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, repo / rel)
    (repo / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (repo / ".gitignore").write_text(".venv\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(git + args, cwd=repo, check=True)
    return repo, git


def make_release(repo, version_value):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    env.pop("VERSION", None)
    return subprocess.run(["make", "-s", "-o", ".venv/.installed", "release", f"VERSION={version_value}"],
                          cwd=repo, capture_output=True, text=True, env=env,
                          timeout=timeouts.child_process())


def state(repo):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout
    tags = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True).stdout
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    return head, tags, status


INJECTIONS = ["1.2.3; touch X", "1.2.3 --no-tag; touch X", "$(touch X)", "`touch X`", "1.2.3' ; touch X ; '",
              '1.2.3" ; touch X ; "', "1.2.3 && touch X", "1.2.3 | touch X", "1.2.3$$(touch X)",
              "$(shell touch X)", "1.2.3$(shell touch X)", "${shell touch X}", "1.2.3\ntouch X"]


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None, reason="needs make and git")
def test_make_release_never_runs_a_version_as_commands(clone):
    repo, _ = clone
    before = state(repo)
    for value in INJECTIONS:
        done = make_release(repo, value)
        assert not (repo / "X").exists(), f"VERSION={value!r} ran a command"
        assert done.returncode != 0 and "VERSION must look like 1.2.3" in done.stderr, (value, done.stderr)
        assert state(repo) == before, f"VERSION={value!r} changed the repository"


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None, reason="needs make and git")
def test_release_refuses_an_existing_tag_or_a_dirty_tree_before_changing_anything(clone):
    repo, git = clone
    done = make_release(repo, "7.8.9")
    assert done.returncode == 0, done.stderr
    head, tags, status = state(repo)
    assert tags.split() == ["v7.8.9"] and status == ""
    assert '__version__ = "7.8.9"' in (repo / "lib/poprisk/__init__.py").read_text()
    again = make_release(repo, "7.8.9")  # the tag exists: refused, nothing touched
    assert again.returncode != 0 and "exists already" in again.stderr
    assert state(repo) == (head, tags, status)
    citation = repo / "CITATION.cff"
    citation.write_text(citation.read_text() + "# a local edit\n")
    text = {p: p.read_text() for p in (repo / "CHANGELOG.md", repo / "lib/poprisk/__init__.py", citation)}
    dirty = make_release(repo, "7.9.0")
    assert dirty.returncode != 0 and "uncommitted changes" in dirty.stderr
    assert state(repo)[:2] == (head, tags) and {p: p.read_text() for p in text} == text


def test_third_party_actions_are_pinned_to_a_commit():
    import re

    uses = re.findall(r"^\s*-?\s*uses:\s*(\S+)", (ROOT / ".github/workflows/publish.yml").read_text(), re.M)
    third = [u for u in uses if not u.startswith("actions/")]
    assert third, "the publish workflow uses no third-party action any more: update this test"
    for ref in third:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned to a commit SHA"
