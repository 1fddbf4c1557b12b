"""``python -m jamjet_temporal`` is the ``jamjet`` command."""

from jamjet_temporal.cli import main

if __name__ == "__main__":
    main()
