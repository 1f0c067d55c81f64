"""Output folders: whole-folder swap (exchange and two-rename), recovery, lock, what is carried."""

from __future__ import annotations

from pathlib import Path

import pytest

import governance._output_folder as folders
from governance._output_folder import OutputLock, output_folder, recover
from governance.errors import InputError

MARKS = ("config.json",)


def _write(target: Path, text: str, **kwargs: object) -> None:
    with output_folder(target, marks=MARKS, ours=("config.json", "weights"), **kwargs) as staging:  # type: ignore[arg-type]
        (staging / "config.json").write_text(text)
        (staging / "weights").write_text(text * 2)


@pytest.mark.parametrize("exchange", [True, False])
def test_a_folder_is_replaced_whole(tmp_path: Path, exchange: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not exchange:
        monkeypatch.setattr(folders, "_exchange", lambda a, b: False)
    target = tmp_path / "model"
    _write(target, "old")
    (target / "notes.txt").write_text("vendor notes")
    _write(target, "new")
    assert (target / "config.json").read_text() == "new" and (target / "weights").read_text() == "newnew"
    assert (target / "notes.txt").read_text() == "vendor notes"  # not ours: carried over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_failed_run_leaves_the_old_folder_and_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "model"
    _write(target, "old")
    with pytest.raises(RuntimeError), output_folder(target, marks=MARKS) as staging:
        (staging / "config.json").write_text("half")
        raise RuntimeError("killed")
    assert (target / "config.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_recover_puts_back_a_folder_set_aside_and_cleans_orphans(tmp_path: Path) -> None:
    target = tmp_path / "model"
    _write(target, "old")
    target.rename(tmp_path / ".model.replaced")
    (tmp_path / ".model.staging-x").mkdir()
    recover(target)
    assert (target / "config.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    # both present: the new folder made it in, the set-aside one is only deleted
    (tmp_path / ".model.replaced").mkdir()
    recover(target)
    assert (target / "config.json").read_text() == "old" and not (tmp_path / ".model.replaced").exists()


def test_the_lock_names_its_holder_and_is_removed_on_release(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with OutputLock(target), pytest.raises(InputError, match=r"pid \d+ on .+, started 20"):
        _write(target, "second")
    assert not (tmp_path / ".model.lock").exists()
    _write(target, "free again")
    assert (target / "config.json").read_text() == "free again"


def test_someone_elses_folder_and_the_current_directory_are_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="not a governance output folder"):
        _write(mine, "x")
    target = tmp_path / "model"
    _write(target, "old")
    monkeypatch.chdir(target)
    with pytest.raises(InputError, match="current directory"):
        _write(target, "x")
    assert (mine / "thesis.tex").read_text() == "years of work"
