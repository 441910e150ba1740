from .cli import _main

_main()
