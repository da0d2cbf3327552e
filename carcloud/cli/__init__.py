"""The `carcloud` command: parse, call the library, print."""

from carcloud.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
