"""Which language a file is in, and its tree-sitter grammar when one is installed.

Grammars come only from the per-language wheels that ship compiled parsers (tree-sitter-python and
friends); each is imported on first use, and a missing wheel means "no grammar": callers then treat
the text as plain text. tree-sitter-language-pack is never used: it downloads grammars at runtime.
"""

from __future__ import annotations

import importlib
import json
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Language

# Extension (lower case, with dot) -> language name.
_EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".rs": "rust",
    ".go": "go",
    ".java": "java",
    ".sh": "bash", ".bash": "bash", ".zsh": "bash", ".ksh": "bash",
    ".json": "json", ".jsonc": "json",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".php": "php", ".lua": "lua", ".kt": "kotlin",
    ".swift": "swift", ".scala": "scala", ".pl": "perl", ".r": "r", ".jl": "julia",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".css": "css", ".html": "html",
    ".htm": "html", ".xml": "xml", ".sql": "sql", ".md": "markdown", ".markdown": "markdown",
}
_FILENAMES: dict[str, str] = {
    "makefile": "make", "gnumakefile": "make", "dockerfile": "dockerfile",
    ".bashrc": "bash", ".bash_profile": "bash", ".profile": "bash", ".zshrc": "bash",
}

# Language -> (module, function returning the grammar capsule).
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
    "bash": ("tree_sitter_bash", "language"),
    "json": ("tree_sitter_json", "language"),
    # Shipped with textual[syntax]; optional here.
    "toml": ("tree_sitter_toml", "language"),
    "yaml": ("tree_sitter_yaml", "language"),
    "css": ("tree_sitter_css", "language"),
    "html": ("tree_sitter_html", "language"),
    "xml": ("tree_sitter_xml", "language_xml"),
    "sql": ("tree_sitter_sql", "language"),
    "markdown": ("tree_sitter_markdown", "language"),
}

# Names a Markdown fence may use for a language (the language's own name always counts).
FENCE_ALIASES: dict[str, frozenset[str]] = {
    "python": frozenset({"py", "python3", "py3", "pyi"}),
    "javascript": frozenset({"js", "jsx", "node", "mjs", "cjs", "nodejs"}),
    "typescript": frozenset({"ts", "tsx"}),
    "rust": frozenset({"rs"}),
    "go": frozenset({"golang"}),
    "bash": frozenset({"sh", "shell", "zsh", "ksh", "console", "shellscript"}),
    "json": frozenset({"jsonc", "json5"}),
    "cpp": frozenset({"c++", "cxx", "cc", "hpp"}),
    "csharp": frozenset({"cs", "c#"}),
    "yaml": frozenset({"yml"}),
    "markdown": frozenset({"md"}),
}

_LINE_COMMENT: dict[str, str] = {
    "python": "#", "bash": "#", "ruby": "#", "perl": "#", "r": "#", "toml": "#", "yaml": "#",
    "make": "#", "dockerfile": "#", "julia": "#", "sql": "--", "lua": "--",
}


def line_comment(language: str | None) -> str | None:
    """The line-comment marker of `language` ("//" for C-like ones), or None when it has none."""
    if language in ("json", "html", "xml", "css", "markdown", None):
        return None
    return _LINE_COMMENT.get(language, "//")


def fence_names(language: str) -> frozenset[str]:
    """Every info-string word that names `language` in a Markdown fence."""
    return FENCE_ALIASES.get(language, frozenset()) | {language}


_SHEBANG_INTERPRETERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"python(\d+(\.\d+)?)?$"), "python"),
    (re.compile(r"(node|nodejs)$"), "javascript"),
    (re.compile(r"(ba|da|k|z)?sh$"), "bash"),
    (re.compile(r"ruby$"), "ruby"),
    (re.compile(r"perl\d*$"), "perl"),
)


def _from_shebang(first_line: str) -> str | None:
    if not first_line.startswith("#!"):
        return None
    words = first_line[2:].split()
    # "/usr/bin/env -S python3 -u": skip env and its options to reach the interpreter.
    while words and (words[0].rsplit("/", 1)[-1] == "env" or words[0].startswith("-")):
        words = words[1:]
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    for pattern, language in _SHEBANG_INTERPRETERS:
        if pattern.match(program):
            return language
    return None


# Light content sniffing: each pattern that matches a line is a vote for its language.
_SNIFF: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("python", re.compile(r"^\s*(def \w+\(.*\)( -> .+)?:|class \w+(\(.*\))?:|from [\w.]+ import |"
                          r"import [\w.]+(, [\w.]+)*$|if __name__ == )")),
    ("javascript", re.compile(r"^\s*(function\*? \w*\(|const \w+ = (require\(|\(.*\) =>|async )|"
                              r"module\.exports|export (default|const|function)|"
                              r"import .* from ['\"])")),
    ("rust", re.compile(r"^\s*((pub(\(\w+\))? )?fn \w+|use \w+(::\w+)+|impl(<.*>)? \w+|"
                        r"let mut \w+|#\[derive\()")),
    ("go", re.compile(r"^\s*(package \w+$|func (\(.*\) )?\w+\(|import \(|\w+ := )")),
    ("java", re.compile(r"^\s*((public|private|protected) (static )?(final )?(class|interface|"
                        r"void|int|String)\b|import java\.|@Override)")),
    ("bash", re.compile(r"^\s*(if \[\[? |fi$|done$|esac$|echo \"|export \w+=|set -e)")),
)


def _sniff(text: str) -> str | None:
    stripped = text.lstrip()
    if stripped[:1] in ("{", "[") and len(stripped) < 5_000_000:
        try:
            json.loads(stripped)
        except ValueError:
            pass
        else:
            return "json"
    votes: dict[str, int] = {}
    for line in text.splitlines()[:300]:
        for language, pattern in _SNIFF:
            if pattern.search(line):
                votes[language] = votes.get(language, 0) + 1
    if not votes:
        return None
    best = max(votes, key=lambda name: votes[name])
    ranked = sorted(votes.values(), reverse=True)
    # A tie is no evidence either way.
    if len(ranked) > 1 and ranked[0] == ranked[1]:
        return None
    return best


def detect_language(path: str | Path | None, text: str) -> str | None:
    """The language of `text`: by file extension, else its shebang, else a light content sniff.

    Returns a lower-case name such as "python", "javascript", "rust", or None when unsure.
    """
    if path is not None:
        p = Path(path)
        by_name = _FILENAMES.get(p.name.lower())
        if by_name:
            return by_name
        by_ext = _EXTENSIONS.get(p.suffix.lower())
        if by_ext:
            return by_ext
    first_line = text.split("\n", 1)[0]
    return _from_shebang(first_line) or _sniff(text)


@cache
def get_language(language: str | None) -> Language | None:
    """The tree_sitter.Language for `language`, or None when its grammar wheel is missing."""
    if language is None or language not in _GRAMMARS:
        return None
    module_name, function = _GRAMMARS[language]
    try:
        import tree_sitter

        module = importlib.import_module(module_name)
        return tree_sitter.Language(getattr(module, function)())
    except (ImportError, AttributeError, ValueError, TypeError):
        # A missing wheel, or one built for an incompatible tree-sitter ABI.
        return None


def has_grammar(language: str | None) -> bool:
    """Whether a compiled grammar for `language` is installed."""
    return get_language(language) is not None
