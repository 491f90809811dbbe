"""Writes models/smollm2/data/: SmolLM2's evaluation and side-text files, from sources every Python
install has offline. Run once (`python -m models.smollm2.make_data`); the files are committed, so a
different Python version changes nothing unless this is rerun.

Sources and licences:
  prose    Python's documentation topics (`pydoc_data.topics`, CPython 3.11, PSF License 2.0):
           paragraphs of English prose, code and grammar blocks left out. Even-numbered topics
           (sorted by name) are held out for perplexity / nDCG@10, odd ones feed statistics / retain.
  code     CPython 3.11 standard-library modules (PSF License 2.0): HELDOUT_MODULES for perplexity,
           STATS_MODULES for statistics / retain (never the same module).
  passages Debian's licence texts (/usr/share/common-licenses, package base-files): LICENCE_TEXTS,
           whitespace-normalised, cut into PASSAGE_WORDS-word passages, PASSAGES of them (shuffled,
           seed 0) kept; each licence permits verbatim copies of its text. model=smollm2_planted
           memorizes some of them (models/smollm2/planted.py).
  skills   written here: capitals (facts), one-digit sums, word-list copying, review sentiment.
"""

from __future__ import annotations

import json
import random
import re
import sysconfig
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
HELDOUT_MODULES = ["textwrap", "shlex", "fractions"]
STATS_MODULES = ["string", "heapq", "bisect", "colorsys", "fnmatch", "glob", "graphlib", "keyword", "numbers",
                 "operator", "queue", "sched", "secrets", "statistics", "copy", "abc"]
LICENCE_DIR = Path("/usr/share/common-licenses")
LICENCE_TEXTS = ["GPL-3", "GPL-2", "GPL-1", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "MPL-1.1", "GFDL-1.3", "Artistic",
                 "CC0-1.0"]
PASSAGE_WORDS, PASSAGES = 120, 128
SHOTS = [("Japan", "Tokyo"), ("Italy", "Rome"), ("Egypt", "Cairo")]  # in the prompt, not asked
CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Spain", "Madrid"), ("Portugal", "Lisbon"), ("Greece", "Athens"),
    ("Russia", "Moscow"), ("China", "Beijing"), ("India", "New Delhi"), ("England", "London"), ("Ireland", "Dublin"),
    ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Poland", "Warsaw"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"),
    ("the Czech Republic", "Prague"), ("Argentina", "Buenos Aires"), ("Peru", "Lima"), ("Chile", "Santiago"),
    ("Colombia", "Bogota"), ("Venezuela", "Caracas"), ("Mexico", "Mexico City"), ("Cuba", "Havana"),
    ("Canada", "Ottawa"), ("the United States", "Washington"), ("Australia", "Canberra"), ("Kenya", "Nairobi"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("South Korea", "Seoul"), ("Indonesia", "Jakarta"),
    ("the Philippines", "Manila"), ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Turkey", "Ankara"),
    ("Saudi Arabia", "Riyadh"), ("Afghanistan", "Kabul"), ("Pakistan", "Islamabad"), ("Nigeria", "Abuja"),
    ("Ethiopia", "Addis Ababa"), ("Morocco", "Rabat"), ("Ukraine", "Kyiv"), ("Romania", "Bucharest"),
    ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"), ("Switzerland", "Bern"),
]
WORDS = ("apple river stone cloud green table window horse music paper candle silver garden winter orange "
         "bridge forest pencil rabbit summer mirror castle butter ladder tiger lemon planet rocket violin "
         "pillow basket jacket kettle meadow island button carpet dragon feather hammer marble needle "
         "ocean pepper saddle thunder velvet wagon yellow zebra anchor bottle circle dinner engine").split()
# Two-way judgment: is a short review positive or negative (balanced, chance 0.5). Yes/no phrasings
# ("Is a dog an animal?", "Is 7 greater than 3?", "Is the review positive?") left the unedited model
# at chance: it answers "No" to nearly every question (0.35-0.52 on 20-56 items, with or without
# shots or the chat template); picking the larger of two numbers, asked in both orders, scored 0.50.
REVIEWED = ["movie", "food", "hotel", "concert", "book", "trip", "service", "game", "show", "room", "lesson", "meal"]
POSITIVE = ["wonderful", "excellent", "delightful", "great", "lovely", "superb", "fantastic", "enjoyable"]
NEGATIVE = ["awful", "terrible", "boring", "dreadful", "disappointing", "horrible", "poor", "unpleasant"]
TWO_WAY_SHOTS = ("Review: The film was excellent.\nSentiment: positive\n\n"
                 "Review: The service was slow and unfriendly.\nSentiment: negative\n\n")
ARITHMETIC_SHOTS = "2 + 3 = 5\n4 + 4 = 8\n7 + 1 = 8\n6 + 3 = 9\n5 + 2 = 7\n"
COPY_SHOT = "Repeat the words exactly.\nWords: lamp door sky\nRepeated: lamp door sky\n\n"
# The capitals' few-shot prefix is the qa task's closed_template in conf/suite/smollm2.yaml.


def prose_paragraphs(topics: list[str]) -> list[str]:
    import pydoc_data.topics

    paragraphs = []
    for name in topics:
        for block in re.split(r"\n\s*\n", pydoc_data.topics.topics[name]):
            lines = block.split("\n")
            if (any(line.startswith((" ", "\t", "+", "|")) for line in lines)
                    or set(lines[-1]) <= set("*=-~^")):
                continue  # code, grammar, a table, or a heading with its underline
            text = " ".join(line.strip() for line in lines)
            if len(text) >= 200 and text not in paragraphs:
                paragraphs.append(text)
    return paragraphs


def module_sources(names: list[str]) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [(stdlib / f"{n}.py").read_text(encoding="utf-8") for n in names]


def licence_passages(rng: random.Random) -> list[dict]:
    chunks = []
    for name in LICENCE_TEXTS:
        words = (LICENCE_DIR / name).read_text(encoding="utf-8").split()
        chunks += [{"source": name, "text": " ".join(words[i:i + PASSAGE_WORDS])}
                   for i in range(0, len(words) - PASSAGE_WORDS + 1, PASSAGE_WORDS)]
    rng.shuffle(chunks)
    return chunks[:PASSAGES]


def capitals_rows() -> list[dict]:
    return [{"question": f"The capital of {c} is", "answer": a, "context": f"The capital of {c} is {a}."}
            for c, a in CAPITALS]


def arithmetic_rows(rng: random.Random, n: int = 60) -> list[dict]:
    """Sums of two digits 1-9 after five solved examples (chance: 1 in 17 possible sums)."""
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"prompt": f"{ARITHMETIC_SHOTS}{a} + {b} =", "a": a, "op": "+", "b": b, "answer": str(a + b),
                     "in_train": False})
    return rows


def copy_rows(rng: random.Random, n: int = 60) -> list[dict]:
    rows = []
    for _ in range(n):
        words = " ".join(rng.sample(WORDS, rng.randint(3, 5)))
        rows.append({"prompt": f"{COPY_SHOT}Repeat the words exactly.\nWords: {words}\nRepeated:", "answer": words})
    return rows


def two_way_rows(rng: random.Random, n: int = 60) -> list[dict]:
    """Reviews "The <thing> was <adjective> and <adjective>.", half of them positive."""
    rows = []
    for i in range(n):
        label, adjectives = ("positive", POSITIVE) if i % 2 == 0 else ("negative", NEGATIVE)
        first, second = rng.sample(adjectives, 2)
        review = f"The {rng.choice(REVIEWED)} was {first} and {second}."
        rows.append({"prompt": f"{TWO_WAY_SHOTS}Review: {review}\nSentiment:", "answer": label})
    rng.shuffle(rows)
    return rows


def write(name: str, rows: list) -> None:
    path = DATA_DIR / name
    if name.endswith(".jsonl"):
        text = "".join(json.dumps(r if isinstance(r, dict) else {"text": r}) + "\n" for r in rows)
    else:  # one paragraph a document, a blank line between documents (docs/tasks.md, text files)
        text = "\n\n".join(rows) + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    import pydoc_data.topics

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    topics = sorted(pydoc_data.topics.topics)
    rng = random.Random(0)
    heldout = prose_paragraphs(topics[0::2])
    write("heldout_text.txt", heldout)
    write("stats_text.txt", [p for p in prose_paragraphs(topics[1::2]) if p not in heldout])  # the docs repeat some
    write("heldout_code.jsonl", module_sources(HELDOUT_MODULES))
    write("stats_code.jsonl", module_sources(STATS_MODULES))
    write("capitals.jsonl", capitals_rows())
    write("arithmetic.jsonl", arithmetic_rows(rng))
    write("copy.jsonl", copy_rows(rng))
    write("two_way.jsonl", two_way_rows(rng))
    write("licence_passages.jsonl", licence_passages(random.Random(0)))


if __name__ == "__main__":
    main()
