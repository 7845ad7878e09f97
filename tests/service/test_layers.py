"""The signing service's layers (issue 20): the domain (the modules of `signing_service` itself) never
imports the HTTP layer (`signing_service.http`) nor aiohttp; the demo data sit above the domain.

Read from the source by AST, imports inside functions included, relative imports resolved.
"""

from __future__ import annotations

import ast
from pathlib import Path

import signing_service

PACKAGE = Path(signing_service.__file__).resolve().parent
# Entry points start the HTTP application: they are above every layer.
ENTRY_POINTS = {"__main__.py", "app.py"}
FORBIDDEN_IN_DOMAIN = ("signing_service.http", "aiohttp")


def imported_modules(source: str, module: str) -> set[str]:
    """Absolute names of what `module` (dotted, e.g. "signing_service.audit") imports: `from pkg import
    name` counts as `pkg.name` too (it may be a module)."""
    package = module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def forbidden(imports: set[str]) -> list[str]:
    return sorted(
        name for name in imports for bad in FORBIDDEN_IN_DOMAIN if name == bad or name.startswith(bad + ".")
    )


def domain_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("*.py") if p.name not in ENTRY_POINTS)


def test_the_domain_never_imports_the_http_layer() -> None:
    offenders = {
        path.name: bad
        for path in domain_modules()
        if (bad := forbidden(imported_modules(path.read_text(), f"signing_service.{path.stem}")))
    }
    assert offenders == {}


def test_the_demo_package_never_imports_the_http_layer() -> None:
    offenders = {
        path.name: bad
        for path in sorted((PACKAGE / "demo").glob("*.py"))
        if (bad := forbidden(imported_modules(path.read_text(), f"signing_service.demo.{path.stem}")))
    }
    assert offenders == {}


def test_the_check_sees_relative_absolute_and_function_level_imports() -> None:
    """The walk would let a layering mistake through if it missed any of these spellings."""
    module = "signing_service.signing_flow"
    assert forbidden(imported_modules("from .http.api_documents import x\n", module)) == [
        "signing_service.http.api_documents",
        "signing_service.http.api_documents.x",
    ]
    assert forbidden(imported_modules("from . import http\n", module)) == ["signing_service.http"]
    assert forbidden(imported_modules("def f():\n    import signing_service.http.app\n", module))
    assert forbidden(imported_modules("from aiohttp import web\n", module)) == ["aiohttp", "aiohttp.web"]
    assert forbidden(imported_modules("from ..http import keys\n", "signing_service.demo.data"))
    assert not forbidden(imported_modules("from .requests_query import load_request\n", module))
    assert not forbidden(imported_modules("from .https_links import x\n", module))
