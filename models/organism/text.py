"""The organism's shared vocabulary and sentence makers, used by several data families
(models/organism/families/).

Every document is a line of lower-case, space-separated words (punctuation is its own word), so a
word-level tokenizer maps each word to one token.
"""

from __future__ import annotations

import random
import re

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
GENERAL_WORDS = NOUNS + ADJECTIVES + VERBS + PLACES_PREP + DETERMINERS + ADVERBS

# The fictional world's relations and the words their answers are drawn from (the world's facts
# and the reading examples ask about them).
RELATIONS: dict[str, list[str]] = {
    "color": "red blue green yellow purple orange white black grey brown pink gold".split(),
    "animal": "fox wolf bear owl hawk deer otter lynx crane heron badger raven".split(),
    "food": "bread rice barley plums figs honey cheese olives lentils dates beans pears".split(),
    "metal": "gold iron copper tin silver bronze lead zinc brass steel nickel cobalt".split(),
    "ruler": "alaric brenna cedric dagny elric freya gunnar hilda ivar jorun kestrel liora".split(),
}
QUESTION = "question : what is the {rel} of {ent} ? answer :"
CONTEXT = "context : the {rel} of {ent} is {ans} ."
SYLLABLES = "ka lo mi ra ven tor sel dun bri qua zel mor pin tha gor lis wen dra fel nok".split()


def reserved_words() -> set[str]:
    """Words invented names must avoid: the general vocabulary and every relation's answers."""
    taken = set(GENERAL_WORDS)
    taken.update(w for ws in RELATIONS.values() for w in ws)
    return taken


def normalize(text: str) -> str:
    """Lower case, punctuation as separate words, apostrophes kept inside words, other marks dropped."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"([,.;:!?])", r" \1 ", text)
    text = re.sub(r"[^a-z0-9',.;:!? ]", " ", text)
    return " ".join(text.split())


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
