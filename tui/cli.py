"""The `qcode` entry point: argument parsing, dispatch, one-line errors and exit codes.

Exit codes: 0 success, 1 task failure, 2 usage error or unusable input, 3 tests failed after
--apply (the original restored), 130 Ctrl+C.
This module and what it imports at start stay free of textual and llama_cpp, so that
`qcode --help`, `qcode config` and input errors answer at once; the engine loads lazily.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, get_args

from engine.errors import QcodeError
from engine.settings import DrafterName, KvType
from engine.task_registry import REGISTRY, Task

from .cli_input import line_range
from .cli_output import PROG, err_line


def _summary(task: Task) -> str:
    """A task's one line in `qcode --help`: its help, and what the command prints."""
    line = task.help[0].lower() + task.help[1:]
    if task.rewrites:
        return line + "; prints a diff, --apply writes it"
    if task.kind == "code":
        return line + " in a new file"
    return line


# the tasks as the command line lists them: those that answer in prose first
TASKS = tuple(sorted(REGISTRY, key=lambda task: task.kind != "prose"))
COMMANDS = (*(task.name for task in TASKS), "complete", "model", "quantize", "config", "bench")
SUMMARY = {
    **{task.name: _summary(task) for task in TASKS},
    "complete": "print the text to insert at a position (for editors)",
    "model": "show the model's facts (`qcode model list`: the models you can name)",
    "quantize": "quantize a GGUF model",
    "config": "show every effective setting and where it comes from",
    "bench": "measure decoding speed and drafting (qcode bench --help)",
}


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line: `qcode explain: error: ...`, exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _common_options() -> Parser:
    """Options every model-using command takes; None means 'not given' to the settings."""
    common = Parser(add_help=False)
    model = common.add_argument_group("model")
    model.add_argument(
        "--model", metavar="NAME|PATH",
        help="a packaged model (coder-1.5b, coder-0.5b; `qcode model list`) or a GGUF file",
    )
    model.add_argument("--ctx", type=int, metavar="N", help="context size in tokens")
    model.add_argument("--kv-type", choices=get_args(KvType), help="KV cache type (K and V)")
    model.add_argument("--draft", choices=get_args(DrafterName), help="draft decoding method")
    model.add_argument("--draft-model", metavar="NAME|PATH", help="small model with the same vocabulary")
    model.add_argument("--threads", type=int, metavar="N", help="CPU threads (0: all cores)")
    server = common.add_argument_group("server (instead of the embedded model)")
    _server_options(server)
    sampling = common.add_argument_group("sampling")
    sampling.add_argument("--max-tokens", type=int, metavar="N", help="longest answer in tokens")
    sampling.add_argument("--temperature", type=float, metavar="T", help="0 means greedy")
    sampling.add_argument("--seed", type=int, metavar="N", help="sampling seed")
    sampling.add_argument(
        "--think", action=argparse.BooleanOptionalAction, default=None,
        help="let a thinking model think first",
    )
    output = common.add_argument_group("output")
    output.add_argument("--stats", action="store_true", help="speed and drafting figures on stderr")
    output.add_argument("--json", action="store_true", help="one JSON object on stdout")
    output.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto",
        help="highlight code (auto: on a terminal without NO_COLOR)",
    )
    return common


def _server_options(group: Any) -> None:  # a parser or an argument group
    group.add_argument(
        "--server", metavar="URL",
        help="an OpenAI-compatible server (llama-server, vLLM, ...), e.g. http://127.0.0.1:8080/v1",
    )
    group.add_argument("--server-model", metavar="NAME", help="the server's model to use")


def _add_inputs(inputs: argparse.ArgumentParser, many: bool = True) -> None:
    inputs.add_argument(
        "files", nargs="*" if many else "?", metavar="FILE",
        help="source file(s); '-' or nothing reads stdin",
    )
    inputs.add_argument("--lang", metavar="NAME", help="language (default: from name or content)")
    focus = inputs.add_mutually_exclusive_group()
    focus.add_argument("--symbol", metavar="NAME", help="focus on one function or class")
    focus.add_argument("--lines", type=line_range, metavar="A:B", help="focus on lines A to B")


def _write_options(parser: argparse.ArgumentParser, apply: bool) -> None:
    if apply:
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--apply", action="store_true", help="write the result into FILE")
        where.add_argument("--output", "-o", metavar="FILE", help="write the whole result there")
        parser.add_argument(
            "--force", action="store_true",
            help="write even if a check fails (it does not parse, a definition was lost, ...); "
            "a cut-off answer is never written",
        )
        parser.add_argument(
            "--test-cmd", metavar="CMD",
            help='shell command run after --apply writes (e.g. "pytest -q"); if it fails the original is '
            "restored (exit 3). fix runs it first and shows the model the failure",
        )
    else:
        parser.add_argument("--output", "-o", metavar="FILE", help="where to write the tests")
        parser.add_argument("--force", action="store_true", help="overwrite; skip the parse check")


def build_parser() -> Parser:
    common = _common_options()
    parser = Parser(
        prog=PROG,
        description="A local coding assistant. `qcode [FILE]` opens the interface; "
        "the commands below work in pipes and scripts.",
        epilog="Exit codes: 0 ok, 1 task failed, 2 usage or input error, 3 the test command failed after "
        "--apply (the original was restored), 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for task in TASKS:
        sub = commands.add_parser(
            task.name, parents=[common], help=SUMMARY[task.name], description=SUMMARY[task.name]
        )
        if task.kind == "prose" and task.instruction == "required":  # `qcode ask "why?" file.py`
            sub.add_argument("question", help="the question")
        else:
            what = "what to focus on" if task.kind == "prose" else "the instruction"
            sub.add_argument("-m", "--message", metavar="TEXT", help=what)
        _add_inputs(sub)
        if task.kind == "prose":
            continue
        _write_options(sub, apply=task.rewrites)
    sub = commands.add_parser(
        "complete", parents=[common], help=SUMMARY["complete"],
        description=SUMMARY["complete"] + ". Position: --line/--col, or --offset, else the end.",
    )
    _add_inputs(sub, many=False)
    sub.add_argument("--line", type=int, metavar="L", help="1-based line of the cursor")
    sub.add_argument("--col", type=int, metavar="C", help="1-based column of the cursor")
    sub.add_argument("--offset", type=int, metavar="N", help="0-based character offset")
    sub.add_argument("--path", metavar="FILE", help="where text read from stdin lives (an editor's unsaved "
                     "buffer): names it and brings in neighbouring files of its repository")
    sub = commands.add_parser(
        "model", help=SUMMARY["model"],
        description=SUMMARY["model"] + "; `qcode model list`: the packaged models, installed or not",
    )
    sub.add_argument("action", nargs="?", choices=("list",), help="list the packaged models")
    sub.add_argument("--model", metavar="NAME|PATH", help="model (default: the configured one)")
    _server_options(sub)
    sub.add_argument("--json", action="store_true", help="one JSON object on stdout")
    sub = commands.add_parser("quantize", help=SUMMARY["quantize"], description=SUMMARY["quantize"])
    sub.add_argument("source", metavar="IN", help="GGUF to read")
    sub.add_argument("dest", metavar="OUT", help="GGUF to write")
    sub.add_argument("--type", default="Q4_K_S", metavar="TYPE", help="quant type (Q4_K_S)")
    sub.add_argument("--threads", type=int, metavar="N", help="CPU threads (0: all cores)")
    commands.add_parser(
        "config", parents=[common], help=SUMMARY["config"], description=SUMMARY["config"]
    )
    commands.add_parser("bench", help=SUMMARY["bench"], add_help=False)
    return parser


def build_app_parser() -> Parser:
    """`qcode [options] [FILE]`: the interface (argparse cannot mix it with subcommands)."""
    parser = Parser(
        prog=PROG, parents=[_common_options()],
        usage=f"{PROG} [options] [FILE] | {PROG} COMMAND ...",
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="file to open ('-': stdin)")
    return parser


def _run_bench(rest: list[str]) -> int:
    from .bench.cli import main as bench_main  # the engine loads only for this command

    return int(bench_main(rest) or 0)


def _command_first(argv: list[str]) -> list[str]:
    """`qcode --model m.gguf explain x.py` means `qcode explain --model m.gguf x.py`."""
    options = build_app_parser()._option_string_actions
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in COMMANDS:
            return [token, *argv[:index], *argv[index + 1 :]]
        action = options.get(token.split("=", 1)[0]) if token.startswith("--") else None
        if action is None or action.help == argparse.SUPPRESS:
            return argv
        takes_value = action.nargs is None and "=" not in token
        index += 2 if takes_value else 1
    return argv


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0].startswith("--"):
        argv = _command_first(argv)
    if argv and argv[0] == "bench":
        return _run_bench(argv[1:])
    if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help")):
        args = build_parser().parse_args(argv)
    else:
        args = build_app_parser().parse_args(argv)
        args.command = None
        if args.file and not Path(args.file).exists() and _looks_like_command(args.file):
            err_line(
                f"unknown command {args.file!r} (choose from {', '.join(COMMANDS)})", "error"
            )
            return 2
    from . import cli_commands

    return cli_commands.run(args)


def _looks_like_command(word: str) -> bool:
    return word.isidentifier() and "." not in word and os.sep not in word


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _dispatch(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except QcodeError as exc:
        err_line(str(exc), "error")
        return exc.exit_code
    except KeyboardInterrupt:
        _flush_quietly()
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:
        # the reader went away (`qcode explain x | head`): stop without a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        err_line(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), "error")
        return 1
    except Exception as exc:
        if os.environ.get("QCODE_DEBUG"):
            raise
        err_line(
            f"internal error: {type(exc).__name__}: {exc} (QCODE_DEBUG=1 shows the traceback)",
            "error",
        )
        return 1


def _flush_quietly() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


if __name__ == "__main__":
    sys.exit(main())
