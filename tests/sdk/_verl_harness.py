"""Building verl's inputs for tests/sdk/test_verl_peer.py without a model hub or a GPU: a real
transformers tokenizer and a real ``verl.DataProto`` shaped as verl's rollout leaves it. Nothing
of verl is replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

VERL_REWARDS = str(Path(__file__).with_name("verl_rewards.py"))
PROMPT_LEN, RESPONSE_LEN = 16, 24


def byte_tokenizer() -> Any:
    """A real byte-level transformers tokenizer: decodes any text, needs no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {char: index for index, char in enumerate(alphabet)}
    vocab.update({"<pad>": len(vocab), "<eos>": len(vocab) + 1})
    model = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=model, pad_token="<pad>", eos_token="<eos>")


def data_proto(tokenizer: Any, samples: list[dict[str, Any]]) -> Any:
    """A DataProto as verl's rollout leaves it: left-padded prompts, right-padded responses,
    the ground truth under reward_model, data_source and extra_info per sample."""
    import numpy as np
    import torch
    from verl import DataProto

    pad = tokenizer.pad_token_id
    prompts, responses, masks = [], [], []
    for sample in samples:
        prompt = tokenizer.encode(sample.get("prompt", "Q?"))[-PROMPT_LEN:]
        response = tokenizer.encode(sample["response"])[:RESPONSE_LEN]
        prompts.append([pad] * (PROMPT_LEN - len(prompt)) + prompt)
        responses.append(response + [pad] * (RESPONSE_LEN - len(response)))
        masks.append(
            [0] * (PROMPT_LEN - len(prompt))
            + [1] * len(prompt)
            + [1] * len(response)
            + [0] * (RESPONSE_LEN - len(response))
        )
    objects = {
        "data_source": [s.get("data_source", "openai/gsm8k") for s in samples],
        "reward_model": [{"ground_truth": s["ground_truth"], "style": "rule"} for s in samples],
        "extra_info": [dict(s.get("extra_info", {"split": "train"})) for s in samples],
    }
    return DataProto.from_dict(
        tensors={
            "prompts": torch.tensor(prompts),
            "responses": torch.tensor(responses),
            "attention_mask": torch.tensor(masks),
        },
        non_tensors={key: np.array(values, dtype=object) for key, values in objects.items()},
    )


def final_rewards(reward_tensor: Any, data: Any) -> list[float]:
    """The reward verl placed on each sample's last valid response token."""
    lengths = data.batch["attention_mask"][:, PROMPT_LEN:].sum(dim=-1)
    return [float(reward_tensor[i, int(n) - 1]) for i, n in enumerate(lengths)]
