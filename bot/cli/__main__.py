"""`python -m bot.cli`: the `leadrouter` command, for a checkout where the script is not on PATH."""

from bot.cli import main

main()
