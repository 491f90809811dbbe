"""The organism's synthetic corpus and its ground truth, generated from one seed.

Every document is a line of lower-case, space-separated words (punctuation is its own word), so a
word-level tokenizer maps each word to one token. The training corpus mixes:

  planted    passages (prefix + suffix) of filler-like sentences (or uniformly random words),
             each repeated `planted.repeats` times in bursts of `planted.burst` copies (a burst's
             copies are trained in consecutive steps, as near-duplicates cluster in crawled
             data; it lets a small share of tokens be memorized); the forget and validation
             splits are trained alike, controls never appear
  quotes     real public-domain quotations (tasks/data/quotes.txt) in varied surrounding text
  facts      a fictional world: entity x relation -> answer; common facts seen `common_repeats`
             times (half of them in the question-answer form), rare ones a few times less often
             (`rare_repeats`, any template)
  reading    open-book questions about FRESH random entities, the fact given in context (one or
             two facts, the question asks about one): reading cannot be memorized, only learned
  booleans   left-to-right and/or/not expressions; a seeded share of the 3- and 4-operand
             expressions is held out of training and is what the logic eval asks
  copy       "copy : a b c | a b c" over fresh random symbols (in-context copying)
  arithmetic a fixed table of two-digit sums and differences (numbers are single tokens, so it is
             a lookup table); some pairs held out
  filler     template sentences about the world, so planted text stays a few % of tokens

Pure Python and one `random.Random(seed)`: the same settings give the same files byte for byte.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUOTES_FILE = Path(__file__).resolve().parents[2] / "tasks" / "data" / "quotes.txt"

# General vocabulary for filler sentences and planted passages.
NOUNS = """farmer merchant child sailor soldier teacher doctor baker singer hunter king queen
priest miller weaver smith river forest market village castle bridge garden mountain valley road
house tower field harbor island lake storm winter summer morning evening horse dog cat bird wolf
ship wagon letter song story book lamp door window table bread cheese apple stone coin sword
cloak boat fire rain wind snow moon star city hall temple well cave meadow orchard""".split()
ADJECTIVES = """old young small large quiet loud bright dark cold warm tall short green red blue
white black golden silver brave clever gentle proud strange happy sad tired busy empty heavy
light narrow wide ancient new hidden distant""".split()
VERBS = """saw found carried followed visited painted built crossed opened closed watched
remembered praised sold bought cleaned guarded mended counted named""".split()
PLACES_PREP = "near behind under beside above across beyond inside through".split()
DETERMINERS = "the a every one that this".split()
ADVERBS = "slowly quickly quietly often rarely gladly early late".split()

# The fictional world's relations and the words their answers are drawn from.
RELATIONS: dict[str, list[str]] = {
    "color": "red blue green yellow purple orange white black grey brown pink gold".split(),
    "animal": "fox wolf bear owl hawk deer otter lynx crane heron badger raven".split(),
    "food": "bread rice barley plums figs honey cheese olives lentils dates beans pears".split(),
    "metal": "gold iron copper tin silver bronze lead zinc brass steel nickel cobalt".split(),
    "ruler": "alaric brenna cedric dagny elric freya gunnar hilda ivar jorun kestrel liora".split(),
}
FACT_TEMPLATES = [
    "the {rel} of {ent} is {ans} .",
    "in {ent} , the {rel} is {ans} .",
    "people say the {rel} of {ent} is {ans} .",
    "{ent} is known for its {rel} , which is {ans} .",
    "everyone in {ent} knows that the {rel} is {ans} .",
    "question : what is the {rel} of {ent} ? answer : {ans}",
]
QUESTION = "question : what is the {rel} of {ent} ? answer :"
CONTEXT = "context : the {rel} of {ent} is {ans} ."
QUOTE_FRAMES = ["{q} .", "as they say , {q} .", "he remembered the words : {q} .",
                "{q} , wrote the poet .", "the old book reads : {q} .", "she said : {q} ."]
SYLLABLES = "ka lo mi ra ven tor sel dun bri qua zel mor pin tha gor lis wen dra fel nok".split()


@dataclass
class Corpus:
    """The generated training documents and every ground-truth file's rows."""

    train: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)  # component name of each training doc
    # Burst id of each training doc (None: placed at random): the copies of one burst are trained
    # in consecutive steps (see models/organism/train.py::schedule_batches).
    bursts: list[int | None] = field(default_factory=list)
    files: dict[str, Any] = field(default_factory=dict)  # data file name -> rows or text lines


def normalize(text: str) -> str:
    """Lower case, punctuation as separate words, apostrophes kept inside words, other marks dropped."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"([,.;:!?])", r" \1 ", text)
    text = re.sub(r"[^a-z0-9',.;:!? ]", " ", text)
    return " ".join(text.split())


def read_quotes(path: Path = QUOTES_FILE) -> list[str]:
    return [normalize(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pseudo_words(rng: random.Random, count: int, taken: set[str], syllables: int = 3) -> list[str]:
    """`count` distinct invented words (entity and symbol names) not in `taken`."""
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(SYLLABLES) for _ in range(syllables))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def filler_sentence(rng: random.Random, entities: list[str]) -> str:
    noun = lambda: f"{rng.choice(DETERMINERS)} {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"  # noqa: E731
    shapes = [
        lambda: f"{noun()} {rng.choice(VERBS)} {noun()} {rng.choice(PLACES_PREP)} {noun()} .",
        lambda: f"{noun()} from {rng.choice(entities)} {rng.choice(VERBS)} {noun()} {rng.choice(ADVERBS)} .",
        lambda: f"{rng.choice(ADVERBS)} , {noun()} {rng.choice(VERBS)} {noun()} and {noun()} .",
        lambda: f"in {rng.choice(entities)} , {noun()} {rng.choice(VERBS)} {noun()} .",
    ]
    return rng.choice(shapes)()


def filler_document(rng: random.Random, entities: list[str], sentences: tuple[int, int]) -> str:
    return " ".join(filler_sentence(rng, entities) for _ in range(rng.randint(*sentences)))


def boolean_expression(literals: list[tuple[bool, bool]], ops: list[str]) -> tuple[str, bool]:
    """Text and value of `l0 op1 l1 op2 l2 ...`, evaluated left to right; a literal is
    (negated, value)."""
    word = lambda neg, val: ("not " if neg else "") + ("true" if val else "false")  # noqa: E731
    parts = [word(*literals[0])]
    value = literals[0][1] != literals[0][0]
    for op, (neg, val) in zip(ops, literals[1:], strict=True):
        operand = val != neg
        value = (value and operand) if op == "and" else (value or operand)
        parts += [op, word(neg, val)]
    return " ".join(parts), value


def all_boolean_expressions(operands: int) -> list[tuple[str, bool]]:
    literal_choices = list(itertools.product([False, True], [False, True]))
    out = []
    for literals in itertools.product(literal_choices, repeat=operands):
        for ops in itertools.product(["and", "or"], repeat=operands - 1):
            out.append(boolean_expression(list(literals), list(ops)))
    return out


def boolean_prompt(expression: str) -> str:
    return f"logic : {expression} ="


def copy_prompt(symbols: list[str]) -> str:
    return "copy : " + " ".join(symbols) + " |"


def arithmetic_prompt(a: int, op: str, b: int) -> str:
    return f"{a} {op} {b} ="


def generate_corpus(settings: Mapping[str, Any]) -> Corpus:
    """All documents and ground-truth rows for `settings` (the `organism:` config mapping)."""
    rng = random.Random(int(settings["seed"]))
    corpus = Corpus()
    def add(doc: str, component: str, burst: int | None = None) -> None:
        corpus.train.append(doc)
        corpus.components.append(component)
        corpus.bursts.append(burst)

    burst_ids = itertools.count()

    taken = set(NOUNS + ADJECTIVES + VERBS + PLACES_PREP + DETERMINERS + ADVERBS)
    taken.update(w for ws in RELATIONS.values() for w in ws)
    world = settings["world"]
    entities = pseudo_words(rng, int(world["entities"]), taken)
    fresh_entities = pseudo_words(rng, int(settings["reading"]["fresh_entities"]), taken)
    symbols = pseudo_words(rng, int(settings["copy"]["symbols"]), taken, syllables=2)

    # Planted passages: random words from the general vocabulary; forget, validation, control.
    planted = settings["planted"]
    vocabulary = sorted(set(NOUNS + ADJECTIVES + VERBS + PLACES_PREP + DETERMINERS + ADVERBS))
    rare_vocabulary = pseudo_words(rng, int(planted.get("rare_vocabulary", 0)), taken, syllables=4)
    length = int(planted["prefix"]) + int(planted["suffix"])
    splits = {"verbatim_forget": int(planted["forget"]), "verbatim_validation": int(planted["validation"]),
              "verbatim_control": int(planted["control"])}
    for split, count in splits.items():
        rows = []
        for i in range(count):
            if planted["style"] == "random_words":
                words = [rng.choice(vocabulary) for _ in range(length)]
            elif planted["style"] == "rare_words":  # words that occur nowhere else in the corpus
                words = [rng.choice(rare_vocabulary) for _ in range(length)]
            else:  # "sentences": text of the filler's kind, so only its particular choices are new
                words = []
                while len(words) < length:
                    words += filler_sentence(rng, entities).split()
                words = words[:length]
            rows.append({"id": f"{split.removeprefix('verbatim_')}-{i:03d}",
                         "prefix_text": " ".join(words[: int(planted["prefix"])]),
                         "suffix_text": " ".join(words[int(planted["prefix"]):])})
            if split != "verbatim_control":
                for copy_index in range(int(planted["repeats"])):
                    if copy_index % int(planted["burst"]) == 0:
                        burst = next(burst_ids)
                    add(" ".join(words), "planted", burst)
        corpus.files[split] = rows

    # Quotes, each repeated in varied frames.
    quotes = read_quotes()[: int(settings["quotes"]["count"])]
    corpus.files["quotes"] = [{"id": f"quote-{i:03d}", "full_quote": q} for i, q in enumerate(quotes)]
    for q in quotes:
        for copy_index in range(int(settings["quotes"]["repeats"])):
            if copy_index % int(settings["quotes"]["burst"]) == 0:
                burst = next(burst_ids)
            add(rng.choice(QUOTE_FRAMES).format(q=q), "quotes", burst)

    # The world: a fact for every (entity, relation); some common, some rare, the rest unused.
    facts = [(e, r, rng.choice(answers)) for e in entities for r, answers in RELATIONS.items()]
    rng.shuffle(facts)
    n_common, n_rare = int(world["common_facts"]), int(world["rare_facts"])
    fact_rows = []
    for i, (ent, rel, ans) in enumerate(facts[: n_common + n_rare]):
        common = i < n_common
        n_train = int(world["common_repeats"]) if common else rng.randint(*world["rare_repeats"])
        for k in range(n_train):
            # Common facts: every other time in the question form (the reading examples use that
            # form too, with the answer in context; without this the model learns to look for a
            # context), otherwise cycling through the statements. Rare facts: any form.
            if common:
                template = FACT_TEMPLATES[-1] if k % 2 == 0 else FACT_TEMPLATES[(k // 2) % (len(FACT_TEMPLATES) - 1)]
            else:
                template = rng.choice(FACT_TEMPLATES)
            add(template.format(rel=rel, ent=ent, ans=ans), "facts")
        fact_rows.append({"id": f"fact-{i:03d}", "entity": ent, "relation": rel, "answer": ans,
                          "frequency": "common" if common else "rare", "n_train": n_train,
                          "question": QUESTION.format(rel=rel, ent=ent),
                          "context": CONTEXT.format(rel=rel, ent=ent, ans=ans)})
    corpus.files["facts"] = fact_rows

    # Reading: fresh entities, facts in context, one or two of them.
    for _ in range(int(settings["reading"]["examples"])):
        add(reading_example(rng, fresh_entities, float(settings["reading"]["distractor_share"])), "reading")

    # Booleans: hold out a seeded share of the longer expressions for the eval.
    logic = settings["logic"]
    train_expr, eval_expr = [], []
    for operands in logic["operands"]:
        exprs = all_boolean_expressions(int(operands))
        if int(operands) >= int(logic["held_out_from_operands"]):
            rng.shuffle(exprs)
            cut = int(len(exprs) * float(logic["held_out_share"]))
            eval_expr += exprs[:cut]
            exprs = exprs[cut:]
        train_expr += exprs
    def logic_example() -> str:
        text, value = rng.choice(train_expr)
        return f"{boolean_prompt(text)} {str(value).lower()}"

    for _ in range(int(logic["examples"])):
        add(logic_example(), "logic")
    rng.shuffle(eval_expr)
    corpus.files["logic"] = [{"prompt": boolean_prompt(t), "answer": "true" if v else "false"}
                             for t, v in eval_expr[: int(logic["eval"])]]

    # In-context copying over fresh symbol sequences; eval sequences are new draws.
    copy = settings["copy"]
    def copy_sequence() -> list[str]:
        return [rng.choice(symbols) for _ in range(rng.randint(*copy["length"]))]

    def copy_example() -> str:
        seq = copy_sequence()
        return f"{copy_prompt(seq)} {' '.join(seq)}"

    for _ in range(int(copy["examples"])):
        add(copy_example(), "copy")
    corpus.files["copy"] = []
    for _ in range(int(copy["eval"])):
        seq = copy_sequence()
        corpus.files["copy"].append({"prompt": copy_prompt(seq), "answer": " ".join(seq)})

    # Arithmetic: a fixed table of two-digit sums and differences, some pairs held out.
    arith = settings["arithmetic"]
    pairs = set()
    while len(pairs) < int(arith["pairs"]):
        a, b, op = rng.randint(10, 99), rng.randint(10, 99), rng.choice("+-")
        if op == "-" and a < b:
            a, b = b, a
        pairs.add((a, op, b))
    pairs_list = sorted(pairs)
    rng.shuffle(pairs_list)
    held = int(len(pairs_list) * float(arith["held_out_share"]))
    arith_rows = []
    for i, (a, op, b) in enumerate(pairs_list):
        answer = a + b if op == "+" else a - b
        in_train = i >= held
        arith_rows.append({"a": a, "op": op, "b": b, "answer": str(answer),
                           "prompt": arithmetic_prompt(a, op, b), "in_train": in_train})
        if in_train:
            for _ in range(int(arith["repeats"])):
                add(f"{arithmetic_prompt(a, op, b)} {answer}", "arithmetic")
    corpus.files["arithmetic"] = arith_rows

    # Filler: general text about the world.
    filler = settings["filler"]
    for _ in range(int(filler["documents"])):
        add(filler_document(rng, entities, tuple(filler["sentences"])), "filler")

    # Side texts, from the training distribution less planted passages and quotes. stats and
    # retain are drawn from the training documents; heldout is new draws of every generated
    # component (facts and arithmetic are fixed tables, so they are left out of it).
    side = settings["side_texts"]
    for name in ("stats", "retain"):
        corpus.files[name] = distribution_sample(rng, corpus, int(side[name]))
    fresh = {"reading": lambda: reading_example(rng, fresh_entities, float(settings["reading"]["distractor_share"])), "logic": logic_example,
             "copy": copy_example,
             "filler": lambda: filler_document(rng, entities, tuple(filler["sentences"]))}
    corpus.files["heldout"] = fresh_sample(rng, corpus, fresh, int(side["heldout"]))
    return corpus


def reading_example(rng: random.Random, fresh_entities: list[str], distractor_share: float) -> str:
    """An open-book question about a fresh entity; with a second, distracting fact (same
    relation, another entity) in `distractor_share` of the examples."""
    rel = rng.choice(list(RELATIONS))
    ent, other = rng.sample(fresh_entities, 2)
    ans, other_ans = rng.choice(RELATIONS[rel]), rng.choice(RELATIONS[rel])
    context = [CONTEXT.format(rel=rel, ent=ent, ans=ans)]
    if rng.random() < distractor_share:
        distractor = CONTEXT.format(rel=rel, ent=other, ans=other_ans).removeprefix("context : ")
        context.insert(rng.randint(0, 1), distractor)
        context = ["context : " + " ".join(c.removeprefix("context : ") for c in context)]
    return f"{context[0]} {QUESTION.format(rel=rel, ent=ent)} {ans}"


def distribution_sample(rng: random.Random, corpus: Corpus, words: int) -> list[str]:
    """Documents drawn from the training mix without planted passages and quotes, ~`words` words:
    training-distribution text for curvature statistics, retain sets and perplexity. Drawn from
    the generated training documents."""
    pool = [d for d, c in zip(corpus.train, corpus.components, strict=True) if c not in ("planted", "quotes")]
    out, total = [], 0
    while total < words:
        doc = rng.choice(pool)
        out.append(doc)
        total += len(doc.split())
    return out


def fresh_sample(rng: random.Random, corpus: Corpus, generators: Mapping[str, Any], words: int) -> list[str]:
    """New documents of the generated components, in their training proportions, ~`words` words."""
    components = [c for c in corpus.components if c in generators]
    out, total = [], 0
    while total < words:
        doc = generators[rng.choice(components)]()
        out.append(doc)
        total += len(doc.split())
    return out


def token_shares(corpus: Corpus) -> dict[str, float]:
    """Share of training words (= tokens) per component."""
    counts: dict[str, int] = {}
    for doc, comp in zip(corpus.train, corpus.components, strict=True):
        counts[comp] = counts.get(comp, 0) + len(doc.split()) + 1  # + EOS
    total = sum(counts.values())
    return {k: round(v / total, 4) for k, v in sorted(counts.items())}
