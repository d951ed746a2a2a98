"""Labelled examples as seed 001 writes them (spec ``labelled_v1``): each entity's offsets
are found in its text here, so every span is right by construction, and a test breaks
one on purpose."""

from __future__ import annotations

from typing import Any

_UTTERANCES = [
    ("Book a table for two at Nopa in San Francisco tonight", "book_restaurant", "neutral", [("Nopa", "ORG"), ("San Francisco", "GPE")], "diner"),
    ("I want to fly from Boston to Denver on Friday", "book_flight", "neutral", [("Boston", "GPE"), ("Denver", "GPE"), ("Friday", "DATE")], "traveller"),
    ("My order from Amazon arrived broken again, this is awful", "complaint", "negative", [("Amazon", "ORG")], "customer"),
    ("What will the weather be like in Paris tomorrow?", "get_weather", "neutral", [("Paris", "GPE"), ("tomorrow", "DATE")], None),
    ("Thanks so much, the support team in Dublin was wonderful", "praise", "positive", [("Dublin", "GPE")], "customer"),
    ("Cancel my flight to Chicago on Monday please", "cancel_flight", "neutral", [("Chicago", "GPE"), ("Monday", "DATE")], "traveller"),
    ("Is it going to rain in London this weekend?", "get_weather", "neutral", [("London", "GPE"), ("this weekend", "DATE")], None),
    ("Reserve a spot at Chez Panisse in Berkeley for Saturday", "book_restaurant", "positive", [("Chez Panisse", "ORG"), ("Berkeley", "GPE"), ("Saturday", "DATE")], "diner"),
    ("The Uber driver was late and rude to me", "complaint", "negative", [("Uber", "ORG")], "customer"),
    ("Find me a cheap flight to Tokyo in March", "book_flight", "positive", [("Tokyo", "GPE"), ("March", "DATE")], "traveller"),
    ("Your team at Acme fixed my laptop in one day, brilliant work", "praise", "positive", [("Acme", "ORG"), ("one day", "DATE")], "customer"),
    ("How cold does it get in Oslo during January?", "get_weather", "neutral", [("Oslo", "GPE"), ("January", "DATE")], None),
]
INTENTS = sorted({intent for _, intent, *_ in _UTTERANCES})
SENTIMENTS = ["negative", "neutral", "positive"]
ENTITY_LABELS = ["DATE", "GPE", "ORG"]


def labelled_examples() -> list[dict[str, Any]]:
    """Twelve labelled examples: four intents' worth of requests, complaints and praise."""
    records = []
    for number, (text, intent, sentiment, found, persona) in enumerate(_UTTERANCES):
        spans = [[entity, label, text.index(entity), text.index(entity) + len(entity)] for entity, label in found]
        record: dict[str, Any] = {"id": f"ex-{number}", "text": text, "expected_intent": intent, "expected_sentiment": sentiment,
                                  "expected_entities": spans, "confidence": round(0.6 + number / 40, 3)}  # fmt: skip
        if persona:
            record["expected_persona"] = persona
        records.append(record)
    return records
