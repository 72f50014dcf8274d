"""Core data types: one candidate sample and a labelled collection of them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One candidate text. label: 1 = member, 0 = non-member, None = unknown."""

    id: str
    text: str
    label: int | None = None
    group: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def document(self) -> str:
        """The document this sample belongs to: its group, else itself (chunks share their document's id)."""
        return self.group if self.group is not None else self.id


@dataclass
class MembershipDataset:
    """An ordered collection of samples plus where they came from and what validation noticed."""

    samples: list[Sample]
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    # A distribution shift the source declares between members and non-members (a benchmark's known bias), or
    # None: under a shift, attack figures are not evidence of membership and the epsilon bound is withheld.
    shift: str | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.samples]

    @property
    def labels(self) -> list[int | None]:
        return [s.label for s in self.samples]

    @property
    def is_labelled(self) -> bool:
        return bool(self.samples) and all(s.label is not None for s in self.samples)

    def subset(self, indices: Sequence[int]) -> MembershipDataset:
        return MembershipDataset([self.samples[i] for i in indices], self.source, list(self.warnings), self.shift)

    def content_hash(self) -> str:
        """sha256 over (id, label, text) of every sample, in order: the data hash of the manifest."""
        h = hashlib.sha256()
        for s in self.samples:
            for part in (s.id, "" if s.label is None else str(s.label), s.text):
                b = part.encode("utf-8")
                h.update(len(b).to_bytes(8, "little"))
                h.update(b)
        return h.hexdigest()
