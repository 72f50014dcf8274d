"""Dataset checks that do not stop a run but change how its metrics should be read."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from miakit.data.sample import Sample

MIN_PER_CLASS = 2
IMBALANCE_THRESHOLD = 0.4


def _count(n: int, singular: str, plural: str | None = None) -> str:
    """'1 text' / '3 texts'."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def dataset_warnings(samples: Iterable[Sample]) -> list[str]:
    """Warnings (with counts) about contradicting labels, duplicates, imbalance and too-small classes."""
    samples = list(samples)
    warnings: list[str] = []

    labels_of_text: dict[str, set[int]] = defaultdict(set)
    for s in samples:
        if s.label is not None:
            labels_of_text[s.text].add(s.label)
    contradicting = sum(1 for labels in labels_of_text.values() if len(labels) > 1)
    if contradicting:
        warnings.append(
            f"{_count(contradicting, 'text')} {'appears' if contradicting == 1 else 'appear'} both as member "
            "and as non-member; such labels contradict each other, so no attack can rank every copy "
            "correctly and the metrics are capped below perfect."
        )

    for label, name in ((1, "member"), (0, "non-member"), (None, "unlabelled")):
        counts = Counter(s.text for s in samples if s.label == label)
        repeated = [c for c in counts.values() if c > 1]
        if repeated:
            extra = sum(c - 1 for c in repeated)
            warnings.append(
                f"{_count(extra, f'{name} sample')} exactly {'repeats' if extra == 1 else 'repeat'} the text "
                f"of an earlier {name} sample ({_count(len(repeated), 'distinct text')} repeated); "
                "duplicates give those texts extra weight in every metric."
            )

    n_members = sum(1 for s in samples if s.label == 1)
    n_nonmembers = sum(1 for s in samples if s.label == 0)
    labelled = n_members + n_nonmembers
    if labelled == 0:
        return warnings
    counts_text = f"{_count(n_members, 'member')} and {_count(n_nonmembers, 'non-member')}"
    for n, name in ((n_members, "member"), (n_nonmembers, "non-member")):
        if n < MIN_PER_CLASS:
            warnings.append(
                f"Fewer than {MIN_PER_CLASS} {name}s ({counts_text}): evaluation is impossible, since "
                f"metrics need at least {MIN_PER_CLASS} samples of each class; samples can still be scored."
            )
    minority = min(n_members, n_nonmembers)
    if minority >= MIN_PER_CLASS and minority < IMBALANCE_THRESHOLD * labelled:
        warnings.append(
            f"Class imbalance: {counts_text}; the minority class is {100 * minority / labelled:.0f}% of "
            f"the {labelled} labelled samples (below {IMBALANCE_THRESHOLD:.0%}). AUC and TPR at low FPR "
            "are unaffected, but accuracy is not comparable with balanced benchmarks."
        )
    return warnings
