"""The paper's toy model (§3.2.1) as a prefopt model kind: 4 prompts, 10 responses, a 3-layer MLP.

Responses 1-4 are chosen (response i is optimal for prompt i), 5-8 rejected, 9-10 never in the data. The MLP is
dressed as a causal LM over a 15-token vocabulary (10 responses, 4 prompts, pad) so that the ordinary collator,
log-prob code, losses and training loop drive it: a pair is the sequence [prompt, response].
"""

from __future__ import annotations

import random

import torch
from torch import nn

N_PROMPTS, N_RESP = 4, 10
CHOSEN, REJECTED, UNSEEN = range(0, 4), range(4, 8), range(8, 10)
NEG = -1e4  # logit of non-response tokens: exactly zero probability in fp32, and no NaN in p·log p

# Initial π(response | prompt i) of Figure 3's four scenarios (the paper's exact numbers are not in our copy).
# Each row: mass on the optimal response i, on each rejected response, on each other prompt's chosen response,
# on each unseen response. The unseen mass starts at 0.14 in every scenario, so dispersion is comparable.
SCENARIOS = {
    1: dict(optimal=0.20, rejected=0.15, other=0.02, unseen=0.07),  # chosen and rejected high (on-policy)
    2: dict(optimal=0.02, rejected=0.18, other=0.04, unseen=0.07),  # chosen low (off-policy), rejected high
    3: dict(optimal=0.60, rejected=0.02, other=0.06, unseen=0.07),  # chosen high, rejected low
    4: dict(optimal=0.02, rejected=0.02, other=0.76 / 3, unseen=0.07),  # both low
}


def target_probs(scenario: int) -> torch.Tensor:
    """[4, 10] initial distributions of a scenario (rows sum to 1)."""
    s = SCENARIOS[scenario]
    out = torch.empty(N_PROMPTS, N_RESP)
    for i in range(N_PROMPTS):
        out[i, list(CHOSEN)] = s["other"]
        out[i, i] = s["optimal"]
        out[i, list(REJECTED)] = s["rejected"]
        out[i, list(UNSEEN)] = s["unseen"]
    return out / out.sum(-1, keepdim=True)


class _Body(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(N_PROMPTS, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())

    def forward(self, input_ids, attention_mask=None):
        onehot = torch.zeros(*input_ids.shape, N_PROMPTS)
        is_prompt = input_ids >= N_RESP
        onehot[is_prompt] = nn.functional.one_hot((input_ids[is_prompt] - N_RESP).clamp(max=N_PROMPTS - 1), N_PROMPTS).float()
        return type("Out", (), {"last_hidden_state": self.mlp(onehot)})()


class _Head(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.out = nn.Linear(hidden, N_RESP)

    def forward(self, h):
        logits = self.out(h)
        return torch.cat([logits, logits.new_full((*logits.shape[:-1], N_PROMPTS + 1), NEG)], dim=-1)


class ToyMLP(nn.Module):
    """One-hot prompt -> 3 linear layers -> categorical over the 10 responses."""

    base_model_prefix = "model"

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.model, self.head = _Body(hidden), _Head(hidden)

    def get_output_embeddings(self):
        return self.head

    def response_probs(self) -> torch.Tensor:
        """[4, 10] exact π(response | prompt) for every prompt."""
        ids = torch.arange(N_RESP, N_RESP + N_PROMPTS)[:, None]
        return torch.softmax(self.head(self.model(ids).last_hidden_state[:, 0])[:, :N_RESP], -1)


def build_toy(scenario: int, hidden: int, steps: int, lr: float, seed: int) -> ToyMLP:
    """Step 1 of §3.2.1: fit the MLP to the scenario's distributions (cross-entropy to soft labels)."""
    torch.manual_seed(seed)
    model, target = ToyMLP(hidden), target_probs(scenario)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        logp = torch.log(model.response_probs())
        loss = -(target * logp).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def toy_metrics(model: ToyMLP) -> dict[str, torch.Tensor]:
    """probs/chosen (optimal response), probs/rejected (total over 5-8), probs/unseen (exact mass on 9-10), and
    probs/other (the other prompts' chosen responses), each averaged over the 4 prompts."""
    with torch.no_grad():
        p = model.response_probs()
    other = p[:, list(CHOSEN)].sum(-1) - p.diagonal()  # other prompts' chosen: also never paired with prompt i
    return {"probs/chosen": p.diagonal().mean(), "probs/rejected": p[:, list(REJECTED)].sum(-1).mean(),
            "probs/unseen": p[:, list(UNSEEN)].sum(-1).mean(), "probs/other": other.mean()}


def tokenizer():
    """Word-level tokenizer: r1..r10 -> 0..9, p1..p4 -> 10..13, <pad> -> 14; no BOS/EOS (one-token responses)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"r{i + 1}": i for i in range(N_RESP)}
    vocab.update({f"p{i + 1}": N_RESP + i for i in range(N_PROMPTS)})
    vocab["<pad>"] = N_RESP + N_PROMPTS
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>")


def pairs(n_per_prompt: int = 16, seed: int = 0) -> list[dict]:
    """Step 2: (prompt i, chosen i, rejected uniform from 5-8) records."""
    rng = random.Random(seed)
    return [{"prompt": f"p{i + 1}", "chosen": f"r{i + 1}", "rejected": f"r{rng.choice(list(REJECTED)) + 1}"}
            for i in range(N_PROMPTS) for _ in range(n_per_prompt)]


def unseen_probe() -> list[dict]:
    """The dispersion probe: every prompt with each unseen response (9 and 10)."""
    return [{"prompt": f"p{i + 1}", "response": f"r{j + 1}"} for i in range(N_PROMPTS) for j in UNSEEN]
