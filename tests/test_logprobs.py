"""Chunked per-sequence log-probs equal the naive full-vocabulary computation, gradients included."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from prefopt.data.collate import Collator
from prefopt.logprobs import chunk_size, response_positions, sequence_logps, to_device


def _model_and_batch():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2)).eval()
    batch = Collator(pad_id=0)([
        {"idx": 0, "prompt_ids": [5, 6, 7], "chosen_ids": [8, 9, 2], "rejected_ids": [10, 2]},
        {"idx": 1, "prompt_ids": [11], "chosen_ids": [12, 13, 14, 15, 2], "rejected_ids": [16, 17, 2]},
    ])
    return model, batch


def _naive(model, batch):
    """log_softmax over the full [rows, T, vocab] logits, masked by completion_mask, summed per row."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, -1)
    tok = logp.gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
    mask = batch.completion_mask[:, 1:].float()
    ent = -(logp.exp() * logp).sum(-1)
    return (tok * mask).sum(-1), mask.sum(-1), (ent * mask).sum(-1)


def test_matches_full_vocabulary_logsoftmax_in_any_chunking():
    model, batch = _model_and_batch()
    want_lp, want_n, want_ent = _naive(model, batch)
    for chunk in (1, 3, 4096):  # 1 and 3 split the 14 response positions unevenly
        got = sequence_logps(model, batch, chunk_tokens=chunk, with_entropy=True)
        torch.testing.assert_close(got.logps, want_lp, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got.tokens, want_n)
        torch.testing.assert_close(got.entropy, want_ent, rtol=1e-5, atol=1e-5)


def test_chunks_hold_a_bounded_share_of_logits():
    """A chunk's fp32 logits stay near 32 MiB on the CPU (in cache) and 256 MiB on a GPU (memory), within [64,
    4096] tokens. CPU, 32,000 words: 2**25 / (4 * 32000) = 262.1 -> 262 tokens. GPU, Qwen2's 151,936 words:
    2**28 / (4 * 151936) = 441.7 -> 441 tokens (it was 4096: 2.3 GiB of logits); 32,000 words: 2097. A 50-word
    vocabulary hits the 4096 cap, a million words the floor of 64."""
    feats = torch.zeros(1, 8)
    assert chunk_size(feats, 32000) == 262
    assert 4 * 32000 * 262 <= 32 << 20 < 4 * 32000 * 263
    assert chunk_size(feats, 151936, on_gpu=True) == 441
    assert 4 * 151936 * 441 <= 256 << 20 < 4 * 151936 * 442
    assert chunk_size(feats, 32000, on_gpu=True) == 2097
    assert chunk_size(feats, 50) == chunk_size(feats, 50, on_gpu=True) == 4096
    assert chunk_size(feats, 1_000_000) == 64
    assert chunk_size(feats, None) == 4096  # a head that does not say its vocabulary (the toy's)


def test_recomputed_chunks_keep_no_logits_for_backward(monkeypatch):
    """What the GPU path saves for backward outside the checkpointed chunks: no [tokens, vocab] tensor (backward
    recomputes each chunk's logits). Keeping them (the CPU path) saves one per chunk, which this check sees."""
    import prefopt.logprobs as logprobs

    model, batch = _model_and_batch()
    vocab = model.lm_head.out_features
    for recompute in (True, False):
        monkeypatch.setattr(logprobs, "recompute_logits", lambda feats, flag=recompute: flag)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t, saved=saved: saved.append(t.shape) or t, lambda t: t):
            sequence_logps(model, batch, chunk_tokens=3)
        logits_like = [shape for shape in saved if len(shape) == 2 and shape[-1] == vocab and shape[0] <= 3]
        assert bool(logits_like) is not recompute, (recompute, logits_like)


def test_gradient_matches_naive():
    model, batch = _model_and_batch()
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])  # a weighted sum touches every row's gradient differently
    (sequence_logps(model, batch, chunk_tokens=3).logps * w).sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    (_naive(model, batch)[0] * w).sum().backward()
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-6)


def test_recomputed_logits_give_the_same_gradients(monkeypatch):
    """The GPU path (each chunk's logits recomputed in backward), forced on the CPU: same log-probs and gradients
    as keeping the logits, for a trainable head and for a frozen one (a LoRA run's head, passed as a tensor)."""
    import prefopt.logprobs as logprobs

    model, batch = _model_and_batch()
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    for frozen_head in (False, True):
        model.lm_head.weight.requires_grad_(not frozen_head)
        params = [p for p in model.parameters() if p.requires_grad]
        results = []
        for recompute in (False, True):
            monkeypatch.setattr(logprobs, "recompute_logits", lambda feats, flag=recompute: flag)
            out = sequence_logps(model, batch, chunk_tokens=3)
            results.append((out.logps, torch.autograd.grad((out.logps * w).sum(), params)))
        (kept, kept_grads), (recomputed, recomputed_grads) = results
        torch.testing.assert_close(recomputed, kept, rtol=0, atol=1e-6)
        for a, b in zip(kept_grads, recomputed_grads):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)


def test_host_positions_equal_device_positions():
    model, batch = _model_and_batch()
    moved = to_device(batch, torch.device("cpu"))
    source, target = response_positions(batch)
    torch.testing.assert_close(moved.response_src, source)
    torch.testing.assert_close(moved.response_tgt, target)
    # row 0 is [5, 6, 7, 8, 9, 2] with completion_mask [0, 0, 0, 1, 1, 1]: tokens 3-5, each predicted from before
    assert target[:3].tolist() == [3, 4, 5] and source[:3].tolist() == [2, 3, 4]
    torch.testing.assert_close(sequence_logps(model, moved).logps, sequence_logps(model, batch).logps)


@pytest.mark.parametrize("layout", ["packed", "shared_prompt"])
def test_packed_layout_gives_the_padded_log_probs_scores_and_gradients(layout):
    """One packed row with variable-length attention = one padded row per sequence (fp32, 1e-5), values and
    gradients, for a causal LM and a sequence-score model; the toy batch mixes lengths 2-8. With shared prompts
    each pair's prompt is computed once and each rejected response attends to it: still the same numbers."""
    from transformers import LlamaForSequenceClassification

    from prefopt import attention
    from prefopt.logprobs import sequence_scores

    name = attention.register()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, pad_token_id=0)
    lm = LlamaForCausalLM(cfg).eval()
    lm.set_attn_implementation(name)
    examples = [{"idx": 0, "prompt_ids": [5, 6, 7], "chosen_ids": [8, 9, 2], "rejected_ids": [10, 2]},
                {"idx": 1, "prompt_ids": [11], "chosen_ids": [12, 13, 14, 15, 2], "rejected_ids": [16, 17, 2]},
                {"idx": 2, "prompt_ids": [3, 4], "chosen_ids": [18, 19, 20, 21, 22, 2], "rejected_ids": [23, 2]}]
    padded, packed = Collator(0)(examples), Collator(0, layout=layout)(examples)
    assert packed.input_ids.shape[0] == 1 and packed.attention_mask.all()  # no padding at all
    shared = 6 if layout == "shared_prompt" else 0  # the three prompts, computed once instead of twice
    assert packed.input_ids.shape[1] == int(padded.attention_mask.sum()) - shared
    results = []
    for batch in (padded, packed):
        out = sequence_logps(lm, batch, with_entropy=True)
        grads = torch.autograd.grad(out.logps.sum(), [p for p in lm.parameters()])
        results.append((out, grads))
    (a, ga), (b, gb) = results
    torch.testing.assert_close(b.logps, a.logps, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.tokens, a.tokens)
    torch.testing.assert_close(b.entropy, a.entropy, atol=1e-5, rtol=0)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(y, x, atol=1e-5, rtol=1e-4)
    rm = LlamaForSequenceClassification(cfg).eval()
    rm.set_attn_implementation(name)
    with torch.no_grad():
        torch.testing.assert_close(sequence_scores(rm, packed), sequence_scores(rm, padded), atol=1e-5, rtol=0)


@pytest.mark.parametrize("layout", ["packed", "shared_prompt"])
def test_a_response_that_starts_its_sequence_is_scored_from_its_second_token_in_every_layout(layout):
    """An empty prompt (pair 1): its responses' first tokens have nothing before them. Padded rows never scored
    them; a packed row must not score them from the previous sequence's last position either."""
    from prefopt import attention

    model, _ = _model_and_batch()
    model.set_attn_implementation(attention.register())
    examples = [{"idx": 0, "prompt_ids": [5, 6, 7], "chosen_ids": [8, 9, 2], "rejected_ids": [10, 2]},
                {"idx": 1, "prompt_ids": [], "chosen_ids": [12, 13, 14, 15, 2], "rejected_ids": [16, 17, 2]}]
    with torch.no_grad():
        padded = sequence_logps(model, Collator(0)(examples))
        packed = sequence_logps(model, Collator(0, layout=layout)(examples))
    assert padded.tokens.tolist() == [3, 4, 2, 2]  # pair 1: 5 - 1 and 3 - 1 tokens scored
    torch.testing.assert_close(packed.tokens, padded.tokens)
    torch.testing.assert_close(packed.logps, padded.logps, atol=1e-5, rtol=0)


def test_packed_layouts_keep_a_sliding_window():
    """A Mistral-style model with a 3-token sliding window: the packed and shared layouts give the padded layout's
    log-probs (whose mask transformers builds with the window), where plain causal attention would not."""
    from transformers import MistralConfig, MistralForCausalLM

    from prefopt import attention

    torch.manual_seed(0)
    model = MistralForCausalLM(MistralConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2, sliding_window=3,
                                             pad_token_id=0)).eval()
    model.set_attn_implementation(attention.register())
    examples = [{"idx": 0, "prompt_ids": [5, 6, 7], "chosen_ids": [8, 9, 2], "rejected_ids": [10, 2]},
                {"idx": 1, "prompt_ids": [11], "chosen_ids": [12, 13, 14, 15, 2], "rejected_ids": [16, 17, 2]}]
    with torch.no_grad():
        padded = sequence_logps(model, Collator(0)(examples)).logps
        for layout in ("packed", "shared_prompt"):
            got = sequence_logps(model, Collator(0, layout=layout)(examples)).logps
            torch.testing.assert_close(got, padded, atol=1e-5, rtol=0)
        model.config.sliding_window = None  # the same weights without the window: different numbers
        assert not torch.allclose(sequence_logps(model, Collator(0)(examples)).logps, padded, atol=1e-3)
