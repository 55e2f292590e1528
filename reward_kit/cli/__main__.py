"""``python -m reward_kit.cli`` is ``rk``."""

from . import main

if __name__ == "__main__":
    main()
