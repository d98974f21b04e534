"""Step 1: split a literate source into sections of (prose, code).

A *section* is one row of a page: the prose a reader reads first, then the code that prose
explains. In a Python file the prose is

* the module docstring (the page's introduction),
* a class or function docstring, which is shown beside its signature, and
* a run of full-line `#` comments, which owns the code below it up to the next prose.

Each top-level function or class and each method starts a row of its own, so that code never
stands beside the prose of the definition above it: a definition with no prose of its own
gets a row without prose, unless it directly follows a comment block that owns no code yet
(that comment is its prose). Functions nested in functions stay with the code around them.

Everything else is code, and no code line is ever lost or reordered: joining the code of all
sections gives back the source with its prose lines removed (the tests check this on awkward
inputs). Python's own tokenizer and `ast` find comments and docstrings, so a `#` inside a string
or a docstring-looking f-string can never fool us the way a regular expression would.

A Markdown file is a single prose section with no code.
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from dataclasses import dataclass, field


class LiterateError(Exception):
    """A problem in a source file, reported as `path:line: message` without a traceback."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass
class Section:
    """One row of a page.

    `prose` is Markdown (already dedented, newlines normalised to `\\n`); `prose_line` is the
    source line its first line came from, so that errors in math can name it. `lines` are the
    code lines as `(line number, text with its own line ending)`; they need not be contiguous,
    because a docstring sits between a signature and the body it describes. `name` is the
    qualified name of the class or function whose docstring this is, or whose definition a
    row without prose starts, for a readable anchor.
    """

    kind: str  # "module", "docstring", "comment", "markdown" or "code" (no prose)
    prose: str
    prose_line: int
    lines: list[tuple[int, str]] = field(default_factory=list)
    name: str | None = None

    @property
    def code(self) -> str:
        return "".join(text for _, text in self.lines)

    @property
    def first_line(self) -> int:
        """The first source line of this section, prose or code, whichever comes first."""
        return min([self.prose_line] + [n for n, _ in self.lines[:1]])


def split(path: str, text: str) -> list[Section]:
    """Sections of a source file, chosen by its extension."""
    if path.endswith(".md"):
        return [Section("markdown", text.replace("\r\n", "\n"), 1)] if text.strip() else []
    if path.endswith(".ipynb"):  # a notebook: one section per cell
        from .notebook import split as split_notebook

        return split_notebook(path, text)
    return split_python(path, text)


def split_python(path: str, text: str) -> list[Section]:
    """Sections of a Python source, in source order.

    One pass over the lines: a prose line (docstring or full-line comment) starts a new section
    unless it continues the prose just before it; a code line joins the current section. A
    class/def docstring then takes its signature lines (decorators included) from the end of
    the section before it, so the reader sees the signature beside its description.
    """
    lines = io.StringIO(text).readlines()  # split at \n only, as the tokenizer does
    docstrings = _docstrings(path, text)
    comments = _comment_lines(path, text, docstrings)
    definitions = _definitions(text)

    sections: list[Section] = []
    current: Section | None = None
    number = 1
    while number <= len(lines):
        if number in docstrings:
            doc = docstrings[number]
            current = Section(doc.kind, doc.prose, doc.prose_line, name=doc.name)
            if doc.signature_line is not None and sections:
                _take_signature(sections[-1], current, doc.signature_line)
                if not sections[-1].prose and not sections[-1].lines:
                    sections.pop()  # it held nothing but the signature
            sections.append(current)
            number = doc.end_line + 1
        elif number in comments:
            if current is None or current.kind != "comment" or current.lines:
                current = Section("comment", "", number)
                sections.append(current)
            current.prose += comments[number] + "\n"
            number += 1
        else:
            if current is None or (number in definitions and not _owns(current)):
                # code before any prose, or a definition without prose: a row of its own
                current = Section("code", "", number, name=definitions.get(number))
                sections.append(current)
            current.lines.append((number, lines[number - 1]))
            number += 1
    return sections


def _owns(section: Section) -> bool:
    """True when the next definition belongs to `section`: a comment block with no code yet."""
    return section.kind == "comment" and not any(text.strip() for _, text in section.lines)


def _definitions(text: str) -> dict[int, str]:
    """First lines (first decorator, if any) of top-level functions and classes and of
    methods, that is definitions directly in a module or class body: line → qualified name."""
    found: dict[int, str] = {}

    def visit(body: list[ast.stmt], qualname: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = qualname + node.name
                found[min([node.lineno] + [d.lineno for d in node.decorator_list])] = name
                if isinstance(node, ast.ClassDef):
                    visit(node.body, name + ".")

    with warnings.catch_warnings():  # `_docstrings` has already reported a syntax error
        warnings.simplefilter("ignore")
        visit(ast.parse(text).body, "")
    return found


def _take_signature(previous: Section, section: Section, signature_line: int) -> None:
    """Move the signature lines (from `signature_line` on) to the start of `section`."""
    keep = [line for line in previous.lines if line[0] < signature_line]
    section.lines = previous.lines[len(keep):]
    previous.lines = keep


@dataclass
class _Docstring:
    kind: str
    prose: str
    prose_line: int
    end_line: int
    signature_line: int | None  # first line of the def/class (its first decorator), if any
    name: str | None


def _docstrings(path: str, text: str) -> dict[int, _Docstring]:
    """Docstrings that fill their own lines, keyed by their first line."""
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" is the source's business
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except SyntaxError as error:
        raise LiterateError(path, error.lineno or 1, f"not valid Python: {error.msg}") from None
    lines = io.StringIO(text).readlines()  # split at \n only, as the tokenizer does
    found: dict[int, _Docstring] = {}

    def visit(node: ast.AST, qualname: str | None) -> None:
        body = getattr(node, "body", None) if isinstance(node, _DOCUMENTED) else None
        if body and _is_docstring(body[0]):
            string = body[0].value
            if _fills_its_lines(lines, string):
                prose, first = _clean_docstring(_prose_of(lines, string))
                if isinstance(node, ast.Module):
                    kind, signature = "module", None
                else:
                    kind = "docstring"
                    signature = min([node.lineno] + [d.lineno for d in node.decorator_list])
                found[string.lineno] = _Docstring(
                    kind, prose, string.lineno + first, string.end_lineno, signature, qualname
                )
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, f"{qualname}.{child.name}" if qualname else child.name)
            else:
                visit(child, qualname)

    visit(tree, None)
    return found


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _fills_its_lines(lines: list[str], string: ast.expr) -> bool:
    """True when nothing but the string stands on its lines (`def f(): "doc"` stays code)."""
    first, last = lines[string.lineno - 1], lines[string.end_lineno - 1]
    before = first.encode()[: string.col_offset].decode()
    after = last.encode()[string.end_col_offset :].decode()
    return not before.strip() and not after.strip()


def _prose_of(lines: list[str], string: ast.Constant) -> str:
    r"""A docstring's text: its value, unless escapes mangled TeX written in a plain string.

    `"\\frac"` gives `\frac` as intended, but labml-style sources write `"\frac"`, whose
    value starts with a form feed (and `\text` with a tab, `\begin` with a backspace). A
    control character that the source does not contain literally can only come from such an
    escape, and then the text as written is what the author meant.
    """
    written = _string_body(lines, string)
    value = string.value.replace("\r\n", "\n")
    invented = {c for c in value if c < " " and c != "\n"} - set(written)
    return written if invented else value


def _string_body(lines: list[str], string: ast.expr) -> str:
    """The text between a string literal's quotes, exactly as written."""
    source = "".join(lines[string.lineno - 1 : string.end_lineno]).encode()
    end = len(source) - len(lines[string.end_lineno - 1].encode()) + string.end_col_offset
    literal = source[string.col_offset : end].decode().lstrip("rRuUbB")
    quote = literal[:3] if literal[:3] in ('"""', "'''") else literal[0]
    return literal[len(quote) : -len(quote)].replace("\r\n", "\n")


def _clean_docstring(body: str) -> tuple[str, int]:
    """Dedent like `inspect.cleandoc`; also return how many leading lines it dropped."""
    lines = body.expandtabs().split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    margin = min(indents, default=0)
    lines = [lines[0].strip()] + [line[margin:].rstrip() for line in lines[1:]]
    first = 0
    while first < len(lines) and not lines[first]:
        first += 1
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines[first:]), first


def _comment_lines(path: str, text: str, docstrings: dict[int, _Docstring]) -> dict[int, str]:
    """Full-line `#` comments that are prose, keyed by line, with `#` and one space removed.

    A comment is code, not prose, when it is a shebang or encoding line, or when it sits inside
    the signature of a def/class whose docstring is prose (it would split the signature).
    """
    in_signature = set()
    for start, doc in docstrings.items():
        if doc.signature_line is not None:
            in_signature.update(range(doc.signature_line, start))
    comments = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.COMMENT:
                continue
            line, column = token.start
            if token.line[:column].strip() or line in in_signature:
                continue  # a comment after code on the same line is part of that code
            if line <= 2 and token.string.startswith(("#!", "# -*-", "# vim:")):
                continue
            body = token.string[1:]
            comments[line] = body[1:] if body.startswith(" ") else body
    except (tokenize.TokenError, SyntaxError) as error:
        raise LiterateError(path, 1, f"cannot tokenize: {error}") from None
    return comments
