"""The training loss from labelled logits only equals the model's own loss, value and gradient."""

from __future__ import annotations

import pytest

from tdm_dagster.generate.generators import get_generator
from tdm_dagster.training.data import collate, tokenize_examples
from tdm_dagster.training.loss import assistant_loss, takes_logit_mask
from tdm_dagster.training.trainer import build_model, load_tokenizer
from tests.support.training import fast_training_config

torch = pytest.importorskip("torch")


def _batch(tokenizer, records: list[dict]) -> dict:
    data = tokenize_examples(records, tokenizer, 384).examples
    return collate(data, tokenizer.pad_token_id)


def _records() -> list[dict]:
    """Prompts of very different lengths, so padding and reply positions differ by row."""
    return get_generator("syllo").generate(1, 3, 7) + get_generator("binary").generate(1, 3, 7)


def _loss_and_grads(model, batch: dict, masked: bool) -> tuple[float, list]:
    model.zero_grad(set_to_none=True)
    loss = assistant_loss(model, batch, masked)
    loss.backward()
    return float(loss.detach()), [p.grad.clone() for p in model.parameters() if p.requires_grad]


@pytest.mark.parametrize("lora", [False, True])
def test_labelled_logits_give_the_models_own_loss_and_gradient(lora):
    config = fast_training_config(lora=lora)
    tokenizer = load_tokenizer(config)
    model = build_model(config, tokenizer)
    batch = _batch(tokenizer, _records())
    assert takes_logit_mask(model)
    masked_loss, masked_grads = _loss_and_grads(model, batch, masked=True)
    full_loss, full_grads = _loss_and_grads(model, batch, masked=False)
    assert masked_loss == pytest.approx(float(model(**batch).loss.detach()), rel=1e-5)
    assert masked_loss == pytest.approx(full_loss, rel=1e-5)
    for masked_grad, full_grad in zip(masked_grads, full_grads, strict=True):
        torch.testing.assert_close(masked_grad, full_grad, rtol=1e-4, atol=1e-6)


def test_the_mask_keeps_only_the_positions_that_predict_a_label():
    """One logits row per labelled token: what makes the loss cheaper than the full one."""
    config = fast_training_config()
    tokenizer = load_tokenizer(config)
    model = build_model(config, tokenizer)
    batch = _batch(tokenizer, _records())
    seen = []
    model.lm_head.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    assistant_loss(model, batch)
    labelled = int((batch["labels"] != -100).sum())
    assert seen == [torch.Size([labelled, model.config.vocab_size])]
    assert labelled < batch["input_ids"].numel() / 3


class _NoLogitMask(torch.nn.Module):
    """A model whose forward takes no ``logits_to_keep``, as some remote-code models."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask, labels):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


def test_a_model_that_cannot_keep_chosen_logits_gets_its_own_loss():
    config = fast_training_config()
    tokenizer = load_tokenizer(config)
    inner = build_model(config, tokenizer)
    model = _NoLogitMask(inner)
    batch = _batch(tokenizer, _records())
    assert not takes_logit_mask(model)
    assert float(assistant_loss(model, batch, takes_logit_mask(model))) == pytest.approx(float(inner(**batch).loss), rel=1e-6)
