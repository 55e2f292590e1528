"""Send the request OpenRLHF's remote-RM client sends, and print the answer.

python examples/openrlhf/client.py http://127.0.0.1:8000/openrlhf/exact_match
"""

import json
import sys

import httpx

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/openrlhf/exact_match"
prompt = "<|user|>What is 2+2? Answer in <answer></answer>.<|assistant|>"
body = {
    "query": [prompt + "<answer>4</answer><|end|>", prompt + "<answer>5</answer><|end|>"],
    "prompts": [prompt, prompt],
    "labels": ["4", "4"],
}
response = httpx.post(url, json=body, timeout=180)
print(response.status_code, json.dumps(response.json(), indent=2))
