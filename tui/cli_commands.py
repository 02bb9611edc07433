"""What each task command (explain, refactor, test, complete, ...) does once its arguments are parsed.

Inputs are read and checked before the model loads, so a bad file costs no load time.
The engine (and llama_cpp) is imported only by commands that generate.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InputError, QcodeError
from engine.events import CUT_OFF, DoneEvent
from engine.settings import QcodeSettings
from engine.task_registry import BY_NAME

from . import cli_settings, cli_tools
from .cli_input import Source, offset_of, read_sources
from .cli_output import (
    ProgressLine,
    consume,
    err_line,
    print_json,
    stats_dict,
    was_cancelled,
)
from .render import StreamRenderer, render_code, render_diff, use_color

if TYPE_CHECKING:
    from engine.backend import Backend as Engine  # the embedded Engine or a RemoteEngine on a server

INTERRUPTED = 130


def run(args: argparse.Namespace) -> int:
    command = args.command
    if command is None:
        return cli_tools.run_interface(args)
    task = BY_NAME.get(command)
    if task is not None:
        if task.kind == "prose":
            return run_prose(args)
        return run_edit(args) if task.rewrites else run_test(args)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "complete": run_complete,
        "model": cli_tools.run_model,
        "quantize": cli_tools.run_quantize,
        "config": cli_tools.run_config,
    }
    return handlers[command](args)


def _check_prompts(settings: QcodeSettings, task: str) -> None:
    """A broken prompt template of the user's is reported before the model loads."""
    from engine.prompts import check_template

    for name in ("system", BY_NAME[task].template):
        check_template(name, settings.prompts_dir)


@contextmanager
def _engine(settings: QcodeSettings) -> Iterator[Engine]:
    from engine.loader import open_backend

    progress = ProgressLine(quiet_unless_tty=True)
    try:
        engine = open_backend(settings, progress=progress)
    finally:
        progress.close()
    try:
        yield engine
    finally:
        engine.close()


def _language(source: Source, args: argparse.Namespace) -> str | None:
    options = vars(args)  # each subcommand declares its own options
    if options.get("lang"):
        from engine.languages import FENCE_ALIASES

        name = str(args.lang).strip().lower()
        return next((lang for lang, names in FENCE_ALIASES.items() if name in names), name)
    from engine.code import detect_language

    return detect_language(source.path, source.text)


def _task_input(
    task: str, source: Source | None, args: argparse.Namespace, language: str | None
) -> Any:
    from engine.tasks import TaskInput

    options = vars(args)  # each subcommand declares its own options
    instruction = options.get("question") or options.get("message")
    return TaskInput(
        task,
        source.text if source else "",
        path=source.path if source else None,
        language=language,
        instruction=instruction,
        symbol=options.get("symbol"),
        lines=options.get("lines"),
    )


def _report_stats(args: argparse.Namespace, done: DoneEvent, engine: Engine) -> dict[str, Any]:
    figures = stats_dict(done.stats, engine.info.name or str(engine.info.path), engine.kv_type)
    if args.stats:
        stats = done.stats
        if not stats.model or not stats.kv_type:
            from dataclasses import replace

            stats = replace(stats, model=figures["model"], kv_type=figures["kv_type"])
        line = stats.one_line()
        if stats.model and stats.model not in line:
            line += f", model {stats.model}"
        err_line(line, "stats")
    return figures


def _generate(
    run_task: Any, engine: Engine, task_input: Any, args: argparse.Namespace,
    language: str | None, cancel: threading.Event,
) -> DoneEvent:
    """Run a file-producing task. Its answer streams to stderr on a terminal (live feedback),
    so that stdout keeps only the product: a diff or a file."""
    live = None
    if not args.json and sys.stderr.isatty():
        live = StreamRenderer(sys.stderr, use_color(sys.stderr, args.color), language)
    try:
        return consume(run_task(engine, task_input, cancel), live.feed if live else None, cancel)
    finally:
        if live:
            live.finish()
            sys.stderr.write("\n")


# explain, review, ask: the answer is the output


def run_prose(args: argparse.Namespace) -> int:
    settings, _ = cli_settings.settings_from(args)
    if args.command == "ask" and not args.question.strip():
        raise InputError("ask needs a question")
    sources: list[Source | None] = list(read_sources(args.files, required=args.command != "ask"))
    if not sources:
        sources = [None]  # `qcode ask "..."` with no code at all
    color = use_color(sys.stdout, args.color)
    _check_prompts(settings, args.command)
    with _engine(settings) as engine:
        from engine.tasks import run_task

        for index, source in enumerate(sources):
            language = _language(source, args) if source else None
            task_input = _task_input(args.command, source, args, language)
            renderer = None if args.json else StreamRenderer(sys.stdout, color, language)
            if renderer and len(sources) > 1 and source is not None:
                sys.stdout.write(("\n" if index else "") + f"==> {source.label} <==\n")
            cancel = threading.Event()
            try:
                done = consume(
                    run_task(engine, task_input, cancel), renderer.feed if renderer else None,
                    cancel,
                )
            finally:
                if renderer:
                    renderer.finish()
            if renderer and done.text and not done.text.endswith("\n"):
                sys.stdout.write("\n")  # a prose answer ends its line
                sys.stdout.flush()
            figures = _report_stats(args, done, engine)
            if args.json:
                record: dict[str, Any] = {"text": done.text, "stats": figures}
                if source is not None and len(sources) > 1:
                    record["file"] = source.label
                print_json(record)
            if was_cancelled(done, cancel):
                return INTERRUPTED
            if _partial(done):
                return 1
    return 0


def _partial(done: DoneEvent) -> bool:
    """A server stream that broke off: the answer shown is incomplete, and the command fails."""
    if done.stats.finish_reason != "partial":
        return False
    err_line("the answer is partial: the server's stream broke off", "error")
    return True


# refactor, fix, doc: a diff, and a checked write with --apply or --output

TESTS_FAILED = 3  # the test command failed after --apply: the original was put back


def run_edit(args: argparse.Namespace) -> int:
    settings, _ = cli_settings.settings_from(args)
    sources = read_sources(args.files)
    if args.command == "refactor" and not (args.message or "").strip():
        raise InputError('refactor needs an instruction: -m "what to change"')
    if args.apply and any(source.path is None for source in sources):
        raise InputError("--apply needs a FILE to write back to; for stdin use --output FILE")
    if args.output and len(sources) > 1:
        raise InputError("--output takes one input file")
    from engine import files

    color = use_color(sys.stdout, args.color)
    _check_prompts(settings, args.command)
    status = 0
    with ExitStack() as held:
        if args.apply:  # a second qcode on the same file refuses now, not after its answer
            for source in sources:
                assert source.path is not None
                held.enter_context(files.locked(source.path))
        failure = _failing_tests(settings) if args.command == "fix" else None
        with _engine(settings) as engine:
            for source in sources:
                result = _edit_one(args, engine, settings, source, color, failure)
                if result == INTERRUPTED:
                    return result
                status = max(status, result)
    return status


def _failing_tests(settings: QcodeSettings) -> str | None:
    """With a test command, run it before a fix: its output when it fails, for the prompt."""
    if not settings.test_cmd.strip():
        return None
    from engine.gate import run_tests

    err_line(f"running the tests first: {settings.test_cmd}")
    run = run_tests(settings.test_cmd, timeout=settings.test_timeout)
    if run.passed:
        err_line("the tests pass before the fix")
        return None
    err_line(f"the tests {run.outcome()}: the fix aims at that")
    return run.output


def _edit_one(
    args: argparse.Namespace, engine: Engine, settings: QcodeSettings, source: Source, color: bool,
    failure: str | None = None,
) -> int:
    from dataclasses import replace

    from engine.edit import unified_diff
    from engine.tasks import rewrite_result, run_task

    language = _language(source, args)
    task_input = replace(_task_input(args.command, source, args, language), failure=failure)
    cancel = threading.Event()
    done = _generate(run_task, engine, task_input, args, language, cancel)
    figures = _report_stats(args, done, engine)
    if was_cancelled(done, cancel):
        return INTERRUPTED
    record: dict[str, Any] = {"text": done.text, "stats": figures, "file": source.label}
    rewrite = rewrite_result(task_input, done.text, done.stats.finish_reason, settings.prompts_dir)
    if rewrite.text is None:
        if args.json:
            print_json({**record, "error": "no code in the answer"})
        err_line(f"no code could be extracted from the answer for {source.label}", "error")
        return 1
    new_text = rewrite.text
    diff = unified_diff(source.text, new_text, source.label)
    problem = rewrite.refusal(args.force)
    refusal = problem.message() if problem else None
    record.update(result=new_text, diff=diff, written=None, backup=None, refused=None, test=None,
                  refusals=[{"check": p.check, "reason": p.reason} for p in rewrite.problems])
    status = 0
    if refusal and (args.apply or args.output):
        err_line(f"not writing {args.output or source.label}: {refusal}", "error")
        record["refused"] = refusal
        status = 1
    elif refusal:
        err_line(refusal, "warning")
        status = 1 if done.stats.finish_reason in CUT_OFF else 0
        record["refused"] = refusal if status else None
    elif args.output or (args.apply and diff):
        status = _write_result(args, settings, source, new_text, record)
    if args.json:
        print_json(record)
    else:
        sys.stdout.write(render_diff(diff, color))
        sys.stdout.flush()
    if not diff:
        err_line(f"no changes to {source.label}")
    return status


def _write_result(
    args: argparse.Namespace, settings: QcodeSettings, source: Source, new_text: str,
    record: dict[str, Any],
) -> int:
    """Write a checked result (--output, or --apply through the test gate); the exit status."""
    from engine import files
    from engine.gate import write_tested

    if args.output:
        written = Path(args.output)
        backup = files.new_file(written, new_text, force=True, bom=source.bom)  # an existing file keeps a backup
        record.update(written=str(written), backup=str(backup) if backup else None)
        err_line(f"wrote {written}" + (f" (backup: {backup})" if backup else ""))
        return 0
    assert source.path is not None
    try:
        gated = write_tested(
            source.path, new_text, expect=source.snapshot, bom=source.bom,
            test_cmd=settings.test_cmd, timeout=settings.test_timeout,
        )
    except files.FileChanged as exc:
        err_line(str(exc), "error")
        record["refused"] = str(exc)
        return 1
    backup = gated.written.backup
    if gated.tests is not None:
        record["test"] = {**gated.tests.to_dict(), "restored": gated.restored}
    if gated.restored:
        assert gated.tests is not None
        if not args.json:
            sys.stderr.write(gated.tests.output.rstrip("\n")[-4000:] + "\n")
        err_line(f"the tests {gated.tests.outcome()} after the rewrite ({gated.tests.command}); "
                 f"{source.label} is restored as it was", "error")
        return TESTS_FAILED
    record.update(written=str(source.path), backup=str(backup) if backup else None)
    err_line(f"wrote {source.path}" + (f" (backup: {backup})" if backup else ""))
    if gated.tests is not None:
        err_line(f"the tests passed ({gated.tests.command})")
    return 0


# test: a new test file


_TEST_NAMES: dict[str, Callable[[Path], str]] = {
    "go": lambda p: f"{p.stem}_test.go",
    "javascript": lambda p: f"{p.stem}.test{p.suffix}",
    "typescript": lambda p: f"{p.stem}.test{p.suffix}",
    "rust": lambda p: f"{p.stem}_test.rs",
    "java": lambda p: f"{p.stem}Test.java",
}


def test_path_for(path: Path, language: str | None) -> Path:
    """Where the tests for `path` go by the language's habit (test_<name>.py for Python)."""
    namer = _TEST_NAMES.get(language or "")
    return path.with_name(namer(path) if namer else f"test_{path.name}")


def run_test(args: argparse.Namespace) -> int:
    settings, _ = cli_settings.settings_from(args)
    sources = read_sources(args.files)
    if len(sources) > 1:
        raise InputError("test takes one input file")
    source = sources[0]
    language = _language(source, args)
    target: Path | None = Path(args.output) if args.output else None
    if target is None and source.path is not None:
        target = test_path_for(source.path, language)
    if target is not None and target.exists() and not args.force:
        raise QcodeError(f"{target} already exists (--force overwrites it, --output picks another)")
    from engine.edit import extract_code
    from engine.files import new_file

    _check_prompts(settings, "test")
    with _engine(settings) as engine:
        from engine.tasks import run_task

        task_input = _task_input("test", source, args, language)
        cancel = threading.Event()
        done = _generate(run_task, engine, task_input, args, language, cancel)
        figures = _report_stats(args, done, engine)
    if was_cancelled(done, cancel):
        return INTERRUPTED
    code = _test_code(done.text, language, extract_code)
    record: dict[str, Any] = {"text": done.text, "stats": figures, "written": None}
    if code is None:
        err_line("no code could be extracted from the answer", "error")
        if args.json:
            print_json(record)
        return 1
    record["result"] = code
    if target is None and _partial(done):
        if args.json:
            print_json(record)
        return 1
    if target is None:  # stdin in, no --output: the tests go to stdout
        if args.json:
            print_json(record)
        else:
            sys.stdout.write(render_code(code, language, use_color(sys.stdout, args.color)))
        return 0
    from engine.checks import blocking, check_rewrite

    # a new file: nothing to compare with, but a cut answer, copied scaffolding or broken code is refused
    problem = blocking(check_rewrite("", code, language, finish_reason=done.stats.finish_reason), args.force)
    refusal = problem.message() if problem else None
    if refusal:
        err_line(f"not writing {target}: {refusal}", "error")
        if args.json:
            print_json(record)
        return 1
    backup = new_file(target, code, force=args.force)
    record["written"] = str(target)
    if args.json:
        print_json(record)
    err_line(f"wrote {target}" + (f" (backup: {backup})" if backup else ""))
    return 0


def _test_code(answer: str, language: str | None, extract: Callable[..., str | None]) -> str | None:
    """The test file in the answer: the prompt opened a fence, so it is normally bare code."""
    if "```" in answer or "~~~" in answer:
        return extract(answer, language)
    code = answer.strip("\n")
    return code + "\n" if code.strip() else None


# complete: only the text to insert


def run_complete(args: argparse.Namespace) -> int:
    settings, _ = cli_settings.settings_from(args)
    names = [args.files] if args.files else []
    source = read_sources(names)[0]
    if args.offset is not None and (args.line is not None or args.col is not None):
        raise InputError("give either --offset or --line/--col, not both")
    if (args.line is None) != (args.col is None):
        raise InputError("--line and --col go together")
    if args.line is not None:
        offset = offset_of(source.text, args.line, args.col, source.label)
    elif args.offset is not None:
        if not 0 <= args.offset <= len(source.text):
            raise InputError(f"--offset {args.offset} is outside {source.label} "
                             f"(0..{len(source.text)} characters)")
        offset = args.offset
    else:
        offset = len(source.text)
    where = Path(args.path) if args.path else source.path
    language = _language(Source(source.text, where, source.label), args)
    with _engine(settings) as engine:
        from engine.tasks import complete_at

        cancel = threading.Event()
        events = complete_at(
            engine, source.text, offset, language=language, max_tokens=args.max_tokens,
            cancel=cancel, path=where,
        )
        # printed whole at the end, not streamed: the final trim at a block or statement
        # boundary may take back streamed text, and an editor reads the whole answer anyway
        done = consume(events, None, cancel)
        figures = _report_stats(args, done, engine)
    # a partial completion is not printed: an editor would insert it
    if not args.json and done.stats.finish_reason != "partial":
        sys.stdout.write(done.text)
        sys.stdout.flush()
    if args.json:
        print_json({"text": done.text, "offset": offset, "stats": figures})
    if was_cancelled(done, cancel):
        return INTERRUPTED
    return 1 if _partial(done) else 0
