"""Replies like an undertrained model's, for the gate's tests and its acceptance bench."""

import random

SYLLABLES = "ba co mi sal ham per dap fo pra lot bil com ise tre vun gor ly".split()


def tiny_model_gibberish(rng: random.Random) -> str:
    """Replies like an undertrained model's: word-like pieces, some with digits glued on."""
    words = []
    for _ in range(rng.randint(7, 14)):
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
        words.append(word + str(rng.randint(1, 99)) if rng.random() < 0.45 else word)
    return " ".join(words)


def chat(reply: str, prompt: str = "Tell me about your day.") -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}], "metadata": {}}
