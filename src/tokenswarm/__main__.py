"""``python -m tokenswarm``: SIGINT/SIGTERM handling is installed before the heavy imports."""

from tokenswarm.io.rundir import exit_on_interrupt


def _main() -> None:
    from tokenswarm.cli import main

    main()


exit_on_interrupt(_main)
