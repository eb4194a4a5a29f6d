"""A retrained run's lineage: the flags between two dataset versions, and their words."""

from __future__ import annotations

import pytest

from modescope.core.lineage import flag_diff, lineage_record, lineage_words
from modescope.core.training import dataset_record


def record(*names: str) -> dict[str, object]:
    from pathlib import Path

    return dataset_record([Path(f"/ws/train/{n}.png") for n in names])


def test_flag_diff_names_the_images_flagged_and_unflagged_in_between() -> None:
    parent, new = record("a", "b", "c", "d"), record("a", "c", "e")
    flagged, unflagged = flag_diff(parent, new)
    assert flagged == ["/ws/train/b.png", "/ws/train/d.png"]
    assert unflagged == ["/ws/train/e.png"]
    assert flag_diff(new, parent) == (unflagged, flagged)  # the other way round swaps them
    assert flag_diff(parent, record("d", "c", "b", "a")) == ([], [])  # order is not a flag


def test_a_moved_workspace_changes_no_flags() -> None:
    """Records hold absolute paths; normalised images are named by content hash."""
    from pathlib import Path

    moved = dataset_record([Path(f"/elsewhere/ws/train/{n}.png") for n in ("a", "c")])
    assert flag_diff(record("a", "b", "c"), moved) == (["/ws/train/b.png"], [])


def test_a_record_without_a_file_list_cannot_be_diffed() -> None:
    with pytest.raises(ValueError, match="file list"):
        flag_diff({"tfrecords": "gs://bucket"}, record("a"))
    out = lineage_record("p", {"tfrecords": "gs://bucket", "sha256": "x"}, record("a"))
    assert out["flagged"] is None and out["parent_dataset"] == "x"
    assert "unknown" in lineage_words(out)


def test_lineage_words_say_parent_count_and_both_directions() -> None:
    out = lineage_record("tiny", record("a", "b", "c"), record("a", "d"))
    assert out["parent"] == "tiny" and out["dataset"] == record("a", "d")["sha256"]
    assert lineage_words(out) == "retrained from tiny after 3 flags: +2 flagged \u22121 unflagged"
    one = lineage_record("tiny", record("a", "b"), record("a"))
    assert lineage_words(one) == "retrained from tiny after 1 flag: +1 flagged \u22120 unflagged"
    same = lineage_record("tiny", record("a"), record("a"))
    assert lineage_words(same) == "retrained from tiny on the same images (no flags changed)"
