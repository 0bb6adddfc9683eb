"""``manage.py mine_log_patterns``: mine templates from a raw log file into a CSV."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from intelligence.logpatterns.batch import count_lines, mine_lines, write_prediction
from intelligence.logpatterns.miner import TemplateMiner

LONG_INPUT_BYTES = 5_000_000


class Command(BaseCommand):
    help = "Mine log templates from INPUT and write LineId,ClusterId,EventTemplate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("input", type=Path, help="raw log file, one message per line")
        parser.add_argument(
            "--log-format",
            default="<Content>",
            help="header format, e.g. '<Date> <Time> <Level>: <Content>' (default: whole line)",
        )
        parser.add_argument("--output", type=Path, help="prediction CSV (default: stdout)")
        parser.add_argument("--state", type=Path, help="load miner state from this JSON first")
        parser.add_argument("--save-state", type=Path, help="write miner state JSON afterwards")
        parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")

    def handle(self, *args: Any, **opts: Any) -> None:
        path: Path = opts["input"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        miner = None
        if opts["state"]:
            try:
                miner = TemplateMiner.from_state(json.loads(opts["state"].read_text()))
            except (OSError, ValueError, KeyError) as exc:
                raise CommandError(f"cannot load miner state {opts['state']}: {exc}") from exc
        show = not opts["no_progress"] and (
            sys.stderr.isatty() or path.stat().st_size > LONG_INPUT_BYTES
        )
        bar = tqdm(total=count_lines(path), unit="line", disable=not show, file=sys.stderr)
        try:
            with path.open(encoding="utf-8", errors="replace") as fh:
                rows, miner = mine_lines(fh, opts["log_format"], miner, on_progress=bar.update)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        if opts["output"]:
            with opts["output"].open("w", encoding="utf-8", newline="") as out:
                write_prediction(rows, out)
        else:
            write_prediction(rows, self.stdout)
        if opts["save_state"]:
            opts["save_state"].write_text(json.dumps(miner.to_state()))
        self.stderr.write(f"{len(rows)} lines, {len(miner.templates)} templates", style_func=None)
