"""`make serve` prints a curl line that works: run the Makefile's server command, then the line.

`make serve` itself is not run (it creates a venv); its recipe is read from the Makefile and
run with this interpreter's scripts, on a free port, exactly as make would expand it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, free_port, require_integration, wait_for_health


def serve_recipe(port: int) -> list[str]:
    """The `serve` target's command with $(BIN), $(HOST) and $(PORT) expanded."""
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(r"^serve:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert found, "no `serve:` target with a one-line recipe in the Makefile"
    variables = {"BIN": str(Path(sys.executable).parent), "HOST": "127.0.0.1", "PORT": str(port)}
    command = re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], found.group(1))
    assert "$" not in command, command
    return shlex.split(command)


def test_the_curl_line_make_serve_prints_works() -> None:
    require_integration("curl", "bash")
    port = free_port()
    process = subprocess.Popen(
        serve_recipe(port),
        cwd=ROOT,
        env={**os.environ, "RK_WORKERS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        printed: list[str] = []
        while not printed or not printed[-1].lstrip().startswith("-d "):
            line = process.stdout.readline()
            assert line, f"rk-serve exited before printing a curl line: {printed}"
            if "curl" in line or printed:
                printed.append(line.rstrip("\n"))
        curl = "\n".join(printed).split("try:", 1)[1]
        assert f"127.0.0.1:{port}" in curl
        wait_for_health(f"http://127.0.0.1:{port}", process)
        # The line as a user pastes it: through a shell, continuation backslash included.
        result = subprocess.run(
            ["bash", "-c", curl], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert answer["score"] == 1.0, answer
        assert answer["function"] == "exact_match"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)  # also closes the pipe


def test_the_readme_installs_from_the_clone_not_from_pypi() -> None:
    # PyPI's `reward-kit` is Fireworks' package: `pip install 'reward-kit[...]'` gets that one.
    readme = (ROOT / "README.md").read_text()
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, re.DOTALL))
    assert "pip install -e '.[server]'" in blocks
    assert not re.search(r"pip install\s+'?reward-kit", blocks), blocks
