"""Try the Fireworks shim locally: write it, import it, and call evaluate() once as Fireworks
does, against your evaluator.

    export RK_API_KEY=...                  # a key the evaluator accepts (RK_API_KEYS)
    python examples/fireworks/try_shim.py --url http://127.0.0.1:8000 --function exact_match \
        --answer '<answer>4</answer>' --ground-truth '"4"'

The shim is written by `rk fireworks shim` (the same file `rk fireworks register` uploads) into
a temporary directory; the result dict is printed as JSON. Exit status 1 when the result is not
a valid score (the reason says why).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("RK_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--function", default=os.environ.get("RK_FUNCTION", "exact_match"))
    parser.add_argument("--api-key-env", default="RK_API_KEY", help="'' to send no key")
    parser.add_argument("--prompt", default="What is 2+2? Answer in <answer></answer>.")
    parser.add_argument("--answer", default="<answer>4</answer>")
    parser.add_argument("--ground-truth", default='"4"', help="any JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        main_py = Path(workdir) / "main.py"
        command = [sys.executable, "-m", "reward_kit.cli", "fireworks", "shim"]
        command += ["--url", args.url, "--function", args.function]
        command += ["--api-key-env", args.api_key_env, "-o", str(main_py)]
        subprocess.run(command, check=True)
        spec = importlib.util.spec_from_file_location("main", main_py)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {main_py}")
        shim = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(shim)

    # Exactly what Fireworks passes: message dicts, any-JSON ground truth, tools, row fields.
    result = shim.evaluate(
        messages=[
            {"role": "user", "content": args.prompt},
            {"role": "assistant", "content": args.answer},
        ],
        ground_truth=json.loads(args.ground_truth),
        tools=None,
    )
    print(json.dumps(result, indent=2))
    return 0 if result.get("is_score_valid") else 1


if __name__ == "__main__":
    sys.exit(main())
