"""`python -m usdt_trio` is the `usdt-trio` command."""

from .cli import main

raise SystemExit(main())
