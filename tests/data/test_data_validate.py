"""Dataset warnings: contradicting labels, duplicates, imbalance, too-small classes, with counts."""

from __future__ import annotations

from data_helpers import write_jsonl

from miakit.data import Sample, dataset_warnings, load_dataset


def samples(*pairs: tuple[str, int | None]) -> list[Sample]:
    return [Sample(f"s{i}", text, label) for i, (text, label) in enumerate(pairs)]


def only(warnings: list[str], start: str) -> str:
    hits = [w for w in warnings if w.startswith(start)]
    assert len(hits) == 1, warnings
    return hits[0]


BALANCED = [("m1", 1), ("m2", 1), ("n1", 0), ("n2", 0)]


def test_clean_data_has_no_warnings():
    assert dataset_warnings(samples(*BALANCED)) == []
    assert dataset_warnings(samples(("a", None), ("b", None))) == []
    assert dataset_warnings([]) == []


def test_same_text_under_both_labels_counts_texts():
    w = dataset_warnings(samples(*BALANCED, ("x", 1), ("x", 0), ("x", 0), ("y", 1), ("y", 0)))
    only(w, "2 texts appear both as member and as non-member")
    w = dataset_warnings(samples(*BALANCED, ("x", 1), ("x", 0)))
    only(w, "1 text appears both as member and as non-member")


def test_duplicates_within_a_class_are_counted_per_class():
    w = dataset_warnings(samples(*BALANCED, ("m1", 1), ("m1", 1), ("m2", 1), ("n1", 0), ("u", None), ("u", None)))
    assert only(w, "3 member samples exactly repeat").endswith(
        "(2 distinct texts repeated); duplicates give those texts extra weight in every metric."
    )
    assert "(1 distinct text repeated)" in only(w, "1 non-member sample exactly repeats")
    only(w, "1 unlabelled sample exactly repeats")


def test_cross_label_copies_are_not_within_class_duplicates():
    w = dataset_warnings(samples(*BALANCED, ("x", 1), ("x", 0)))
    assert not any("repeat" in x for x in w)


def test_class_imbalance_says_the_counts():
    w = dataset_warnings(samples(*[(f"m{i}", 1) for i in range(3)], *[(f"n{i}", 0) for i in range(7)]))
    msg = only(w, "Class imbalance: 3 members and 7 non-members")
    assert "30%" in msg
    assert len(w) == 1


def test_forty_percent_is_balanced_enough():
    w = dataset_warnings(samples(*[(f"m{i}", 1) for i in range(4)], *[(f"n{i}", 0) for i in range(6)]))
    assert w == []


def test_imbalance_ignores_unlabelled_samples():
    w = dataset_warnings(samples(*BALANCED, *[(f"u{i}", None) for i in range(10)]))
    assert w == []


def test_too_few_of_a_class():
    w = dataset_warnings(samples(("m1", 1), ("n1", 0), ("n2", 0), ("n3", 0)))
    msg = only(w, "Fewer than 2 members (1 member and 3 non-members): evaluation is impossible")
    assert not any(x.startswith("Class imbalance") for x in w)
    w = dataset_warnings(samples(("m1", 1), ("m2", 1)))
    only(w, "Fewer than 2 non-members (2 members and 0 non-members): evaluation is impossible")
    assert msg


def test_unlabelled_data_gets_no_class_warnings():
    assert dataset_warnings(samples(("a", None))) == []


def test_load_dataset_attaches_warnings(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"text": "same", "label": 1},
            {"text": "same", "label": 0},
            {"text": "m", "label": 1},
            {"text": "m", "label": 1},
            {"text": "n", "label": 0},
        ],
    )
    w = load_dataset(path).warnings
    only(w, "1 text appears both as member and as non-member")
    only(w, "1 member sample exactly repeats")
    assert len(w) == 2


def test_warnings_describe_the_subset_after_max_samples(tmp_path):
    records = [{"text": f"m{i}", "label": 1} for i in range(10)] + [{"text": f"n{i}", "label": 0} for i in range(10)]
    ds = load_dataset(write_jsonl(tmp_path / "d.jsonl", records), max_samples=2)
    only(ds.warnings, "Fewer than 2 members (1 member and 1 non-member)")
