"""Hyperparameter names: deprecated aliases, unknown-name errors, and one-line docs read from a
class's numpydoc ``Parameters`` section.

The library's vocabulary (one name per hyperparameter, every model): ``factors`` (latent
dimension), ``epochs`` (full passes over the data / ALS sweeps), ``lr`` (learning rate), ``reg``
(L2 weight), ``random_state``, ``num_threads``, ``verbose``. A class lists the names it used to
take in ``renamed_params`` (old → new); :func:`checked_init` wraps its ``__init__`` so that an old
name still works but warns (``FutureWarning``), and an unknown name raises a ``TypeError`` that
lists the valid ones. Model files store parameters by name; loading translates old names
without a warning (the user did not write them).
"""

from __future__ import annotations

import functools
import inspect
import re
import warnings
from typing import Any, Callable, Mapping

_PARAM_LINE = re.compile(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*:\s*(.*)$")
_SECTION_RULE = re.compile(r"^-{3,}\s*$")


def init_param_names(init: Callable) -> list[str]:
    """Named parameters of an ``__init__`` (without ``self`` and ``*args``/``**kwargs``)."""
    sig = inspect.signature(init)
    return [p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def translate(owner: str, renamed: Mapping[str, str], params: Mapping[str, Any], warn: bool = True,
              stacklevel: int = 3) -> dict[str, Any]:
    """``params`` with deprecated names replaced by their new names (a ``FutureWarning`` per old
    name when ``warn``). Giving both an old name and its new name is an error."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        new = renamed.get(k)
        if new is None:
            if k in out:
                raise TypeError(f"{owner}: parameter {k!r} given twice (also under a deprecated name)")
            out[k] = v
            continue
        if new in params or new in out:
            raise TypeError(f"{owner}: got both {k!r} and {new!r}; {k!r} is the deprecated name of {new!r}")
        if warn:
            warnings.warn(f"{owner}: parameter {k!r} is deprecated, use {new!r} instead", FutureWarning,
                          stacklevel=stacklevel)
        out[new] = v
    return out


def unknown_message(owner: str, bad: list[str], valid: list[str]) -> str:
    s = "s" if len(bad) > 1 else ""
    return (f"{owner} has no parameter{s} {', '.join(map(repr, bad))}; "
            f"valid parameters: {', '.join(valid)}")


def checked_init(init: Callable) -> Callable:
    """Wrap a model's ``__init__``: deprecated keyword names are translated with a
    ``FutureWarning``, unknown ones raise a ``TypeError`` listing the valid names. The wrapper
    keeps the original signature (``inspect.signature`` follows ``__wrapped__``)."""
    if getattr(init, "_tastebud_checked", False):
        return init
    names = init_param_names(init)
    has_varkw = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(init).parameters.values())

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs:
            cls = type(self)
            kwargs = translate(cls.__name__, getattr(cls, "renamed_params", {}), kwargs, stacklevel=3)
            if not has_varkw:
                bad = [k for k in kwargs if k not in names]
                if bad:
                    raise TypeError(unknown_message(cls.__name__, bad, names))
        init(self, *args, **kwargs)

    __init__._tastebud_checked = True  # type: ignore[attr-defined]
    return __init__


# ---------------------------------------------------------------------- docs
def parse_parameters(doc: str | None) -> dict[str, str]:
    """``{name: description}`` from the numpydoc ``Parameters`` section of ``doc``.

    Entries are ``name : description`` or ``a, b : shared description`` at the section's
    indentation, continued by more-indented lines; the description may also start on the next
    line (``name : type`` then the text). The section ends at a blank line followed by text at
    the entry indentation that is not an entry, at another section heading, or at the end.
    """
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    start = None
    for j in range(len(lines) - 1):
        if lines[j].strip() == "Parameters" and _SECTION_RULE.match(lines[j + 1].strip()):
            start = j + 2
            break
    if start is None:
        return {}
    out: dict[str, str] = {}
    base: int | None = None
    cur: list[str] = []
    cur_text: list[str] = []

    def flush() -> None:
        if cur:
            text = " ".join(t.strip() for t in cur_text if t.strip())
            for n in cur:
                out.setdefault(n, text)

    for j in range(start, len(lines)):
        line = lines[j]
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if base is None:
            base = indent
        if j + 1 < len(lines) and _SECTION_RULE.match(lines[j + 1].strip()):
            break  # the next section's heading
        if indent <= base:
            m = _PARAM_LINE.match(line.strip())
            if indent < base or m is None:
                break
            flush()
            cur = [n.strip() for n in m.group(1).split(",")]
            cur_text = [m.group(2)]
        elif cur:
            cur_text.append(line)
    flush()
    return out


def one_line(text: str, width: int = 120) -> str:
    """The first sentence of ``text``: up to the first full stop outside brackets that ends a
    word (not "e.g.", "i.e." or "..."), cut at ``width`` characters."""
    text = " ".join(text.split())
    depth, end = 0, len(text)
    for j, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == "." and depth == 0 and (j + 1 == len(text) or text[j + 1] == " "):
            word = text[:j + 1].rsplit(" ", 1)[-1]
            if word.lower() not in ("e.g.", "i.e.", "etc.") and not word.endswith(".."):
                end = j
                break
    first = re.sub(r":\w+:`~?([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text[:end]).replace("``", "")
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def param_table(cls: type) -> list[tuple[str, Any, str]]:
    """``(name, default, one-line doc)`` for each constructor parameter of ``cls``, docs read
    from the ``Parameters`` sections of ``cls`` and its bases (the class's own text wins)."""
    docs: dict[str, str] = {}
    for klass in cls.__mro__:
        for k, v in parse_parameters(klass.__dict__.get("__doc__")).items():
            docs.setdefault(k, v)
    sig = inspect.signature(cls.__init__)
    rows = []
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = p.default if p.default is not inspect.Parameter.empty else None
        rows.append((p.name, default, one_line(docs.get(p.name, ""))))
    return rows
