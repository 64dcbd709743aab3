"""`python -m bot` is the `sif-bot` command."""

from bot.entrypoints.cli import main

main()
