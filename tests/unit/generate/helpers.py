"""The two turns of a generated chat example, as the generator tests read them."""

from __future__ import annotations


def user_text(example: dict) -> str:
    return example["messages"][0]["content"]


def assistant_text(example: dict) -> str:
    return example["messages"][1]["content"]
