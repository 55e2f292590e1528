"""OpenRLHF's reward protocol, shared by the server's ``/openrlhf/<fn>`` route and the SDK's
``reward_func``: what a query means.

OpenRLHF 0.9.1 and later score one sample per call and turn each answer's ``extra_logs`` into
that sample's ``info``; a batch's ``info`` dicts are then merged key by key, so every sample
needs the same keys (:class:`reward_kit._metric_keys.MetricKeys`).
"""

from __future__ import annotations

__all__ = ["completion_of", "messages_of", "prompt_found"]


def completion_of(query: str, prompt: str) -> str:
    """The response part of an OpenRLHF query: the text after the prompt's first occurrence,
    or the whole query when the prompt is not in it.

    >>> completion_of("<s>Q: 2+2?\\nA: 4</s>", "Q: 2+2?\\nA:")
    ' 4</s>'
    """
    at = query.find(prompt) if prompt else -1
    return query[at + len(prompt) :] if at >= 0 else query


def prompt_found(query: str, prompt: str) -> bool:
    """Whether ``prompt`` is in ``query``; when it is not, the whole query is scored as the
    response (a tokenizer round trip that changed the prompt's text, or a client that sends
    only the response), which is worth a warning.

    >>> prompt_found("Q? A", "Q?"), prompt_found("A", "Q?")
    (True, False)
    """
    return not prompt or prompt in query


def messages_of(query: str, prompt: str) -> list[dict[str, str]]:
    """The conversation a reward function scores for one OpenRLHF sample.

    >>> messages_of("Q? A", "Q?")
    [{'role': 'user', 'content': 'Q?'}, {'role': 'assistant', 'content': ' A'}]
    """
    return [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": completion_of(query, prompt)},
    ]
