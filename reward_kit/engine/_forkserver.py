"""Preloaded by the worker pool's fork server; importing it is its whole purpose.

The fork server is the parent of every worker. Made a *child subreaper* here, it also becomes
the parent of whatever a worker leaves behind when it is killed or dies (a process a reward
started, even one that double-forked or called ``setsid``), instead of init. The server then
finds those orphans among the fork server's children and kills them (_pool.sweep_orphans).
The fork server exits when the server does, even a SIGKILLed one (multiprocessing closes it
when its pipe from the server closes), and the workers die with it (``die_with_parent``).
This runs on import because multiprocessing offers no other hook into its fork server.
"""

from __future__ import annotations

import warnings

from ._containment import make_subreaper

__all__: list[str] = []

make_subreaper()
# The fork server reaps the killed orphans itself, and would warn about each one.
warnings.filterwarnings("ignore", message="forkserver: waitpid returned unexpected pid")
