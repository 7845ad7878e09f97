"""Third-party functions our Rasa patches replace or rely on, pinned by the sha256 of their source.

A patch is written against one version of a function. After an upgrade the function may do more, or
something else, and a replacement would silently undo that. So every patch names the functions it
touches with the sha256 of `inspect.getsource` of the version it was written for; the installer
(deploy/rasa_patches.py) refuses a patch whose functions changed, and tests/deploy/test_rasa_patches.py
fails on any change, which is where an upgrade is noticed and each patch re-read.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

ORIGINAL_ATTR = "__cskh_original__"  # on a replacement: the function it replaced


def source_sha256(function: Any) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def original(function: Any) -> Any:
    """The third-party function behind `function`, when `function` is one of our replacements."""
    while hasattr(function, ORIGINAL_ATTR):
        function = getattr(function, ORIGINAL_ATTR)
    return function


def replace(owner: Any, name: str, replacement: Any) -> None:
    """Set `owner.name` to `replacement`, remembering what it replaced (a static or class method
    stays one: pass the plain function)."""
    current = inspect.getattr_static(owner, name)
    setattr(replacement, ORIGINAL_ATTR, getattr(owner, name))
    if isinstance(current, staticmethod | classmethod):
        replacement = type(current)(replacement)
    setattr(owner, name, replacement)


@dataclass(frozen=True)
class SourcePin:
    """`where` is "module:Class.attribute" (or "module:function"); `sha256` of its original source."""

    where: str
    sha256: str

    def resolve(self) -> Any:
        module_name, _, path = self.where.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in path.split("."):
            obj = getattr(obj, part)
        return original(obj)

    def source(self) -> str:
        """The pinned function's source as the installed library's file has it.

        A method is read from its class's source, not from the live function: Sanic's TouchUp
        recompiles `Http.http1_request_header` when an app starts (in tests, any in-process Sanic
        app), and the recompiled function's source is not the library's."""
        module_name, _, path = self.where.partition(":")
        owner_path, _, name = path.rpartition(".")
        if owner_path:
            owner: Any = importlib.import_module(module_name)
            for part in owner_path.split("."):
                owner = getattr(owner, part)
            if inspect.isclass(owner):
                lines = inspect.getsource(owner).splitlines(keepends=True)
                tree = ast.parse(textwrap.dedent("".join(lines)))
                for node in tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []:
                    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                        first = min([d.lineno for d in node.decorator_list] + [node.lineno])
                        return "".join(lines[first - 1 : node.end_lineno])
        return inspect.getsource(self.resolve())

    def drift(self) -> str | None:
        """Why the installed function is not the pinned one, or None when it is."""
        try:
            found = hashlib.sha256(self.source().encode()).hexdigest()
        except (ImportError, AttributeError, OSError, TypeError) as e:
            return f"{self.where}: not found ({e.__class__.__name__}: {e})"
        if found != self.sha256:
            return (
                f"{self.where}: source changed (sha256 {found[:12]}…, patch written for {self.sha256[:12]}…)"
            )
        return None


def pins(*pairs: tuple[str, str]) -> tuple[SourcePin, ...]:
    """`SourcePin`s from ("module:Class.attribute", sha256) pairs, as the patches list them."""
    return tuple(SourcePin(where, sha256) for where, sha256 in pairs)
