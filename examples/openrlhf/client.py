"""Send the request OpenRLHF's remote-RM client sends, and print the answer.

python examples/openrlhf/client.py http://127.0.0.1:8000/openrlhf/exact_match

OpenRLHF itself sends no credential; this script sends `Authorization: Bearer $RK_API_KEY`
when RK_API_KEY is set, so it also works against an evaluator started with RK_API_KEYS.
Exit status 1 when the evaluator does not answer 200.
"""

import json
import os
import sys

import httpx

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/openrlhf/exact_match"
key = os.environ.get("RK_API_KEY")
prompt = "<|user|>What is 2+2? Answer in <answer></answer>.<|assistant|>"
body = {
    "query": [prompt + "<answer>4</answer><|end|>", prompt + "<answer>5</answer><|end|>"],
    "prompts": [prompt, prompt],
    "labels": ["4", "4"],
}
headers = {"Authorization": f"Bearer {key}"} if key else {}
response = httpx.post(url, json=body, headers=headers, timeout=180)
try:
    answer = json.dumps(response.json(), indent=2)
except ValueError:
    answer = response.text
print(response.status_code, answer)
sys.exit(0 if response.is_success else 1)
