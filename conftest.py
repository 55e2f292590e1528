"""pytest's root configuration: the strict-skip plugin for every test, and the modules that
``--doctest-modules`` must not import."""

collect_ignore = [
    # Imported for its side effect (the worker pool's fork server becomes a subreaper).
    "reward_kit/engine/_forkserver.py",
    "reward_kit/cli/__main__.py",
    # Run inside the sandbox as scripts, next to the files they import there.
    "reward_kit/sandbox/_harness.py",
    "reward_kit/sandbox/_launcher.py",
    "reward_kit/sandbox/_solution.py",
    "reward_kit/sandbox/_verdict.py",
]
collect_ignore_glob = ["tests/fixtures/*", "tests/typing/*", "examples/*"]

pytest_plugins = ["tests._strict_skips"]
