"""``python -m graphrun``: the same as the ``graphrun`` command."""

from __future__ import annotations

from graphrun.cli.main import main

main()
