"""The memory watchdog walks only the run's own process tree, and copes without /proc."""

from __future__ import annotations

from pathlib import Path

import pytest

from reward_kit.sandbox import _watchdog


def fake_proc(root: Path, tree: dict[int, dict[int, list[int]]], stats: dict[int, int]) -> None:
    """``tree``: pid -> {tid: children}; ``stats``: pid -> parent pid, for /proc/<pid>/stat."""
    for pid, tasks in tree.items():
        for tid, children in tasks.items():
            task = root / str(pid) / "task" / str(tid)
            task.mkdir(parents=True)
            (task / "children").write_text(" ".join(map(str, children)) + " ")
    for pid, parent in stats.items():
        (root / str(pid)).mkdir(exist_ok=True)
        (root / str(pid) / "stat").write_text(f"{pid} (a (b) c) S {parent} 1 1\n")


def test_the_tree_is_walked_from_the_root_not_from_every_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10 has two threads, each with children; 99 is another process of the host.
    fake_proc(
        tmp_path, {10: {10: [11], 12: [12]}, 11: {11: [13]}, 12: {12: []}, 13: {13: []}}, {99: 10}
    )

    def every_process() -> dict[int, int]:
        raise AssertionError("read every process of the host")

    monkeypatch.setattr(_watchdog, "_PROC", str(tmp_path))
    monkeypatch.setattr(_watchdog, "_parents", every_process)
    assert sorted(_watchdog._tree(10)) == [10, 11, 12, 13]


def test_without_children_files_the_tree_falls_back_to_parent_pids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_proc(tmp_path, {}, {10: 1, 11: 10, 12: 11, 13: 1})
    for pid in (10, 11, 12, 13):
        (tmp_path / str(pid) / "task" / str(pid)).mkdir(parents=True)  # no children file
    monkeypatch.setattr(_watchdog, "_PROC", str(tmp_path))
    assert sorted(_watchdog._tree(10)) == [10, 11, 12]


def test_without_proc_the_watchdog_measures_nothing_instead_of_crashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_watchdog, "_PROC", str(tmp_path / "no-proc"))
    assert _watchdog.tree_memory(1, mounts=["/tmp"]) == 0
