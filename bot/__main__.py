"""`python -m bot` is the `sif-bot` command."""

from bot.cli import main

main()
