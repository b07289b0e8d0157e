"""`python -m ember ...` is the `ember` command (for a Python without the script on PATH)."""

from ember._private.cli import main

main(prog_name="ember")
