"""Every workbench change is one git commit by the trainer, in the project the workbench edits.

The NLU YAML files stay the source of truth, so developers and trainers share them through git:
before writing, the file must have no uncommitted edits (someone else's work is never overwritten),
the configured branch must be the one checked out, and the commit touches only the changed file
(`git add -- <file>` then `git commit -- <file>`, so whatever else is staged stays out of it).
Writes are serialised by an asyncio lock and, across desk processes, by a lock file in `.git`.
git runs as a subprocess (never a shell), without prompts, in bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from agent_desk.training.file_lock import FileLock, LockBusy
from agent_desk.training.texts import TEXTS

GIT_TIMEOUT_S = 20.0
LOCK_WAIT_S = 30.0
LOCK_NAME = "cskh-workbench.lock"


class GitError(Exception):
    """A change cannot be saved; the message (Vietnamese) says why, for the trainer."""


@dataclass(frozen=True)
class Author:
    display_name: str
    username: str

    @property
    def ident(self) -> tuple[str, str]:
        name = re.sub(r"[<>\n\r\x00]", "", self.display_name).strip() or self.username
        return name[:100], f"{self.username}@workbench.local"


async def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run git; (exit code, output). Never a shell, never a prompt, at most GIT_TIMEOUT_S seconds."""
    full_env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "LC_ALL": "C",
        **(env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=str(cwd),
        env=full_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise GitError(TEXTS.get("git_timeout")) from None
    return proc.returncode or 0, out.decode("utf-8", "replace")


class GitStore:
    """Commits of one project directory (settings.training.project_dir, branch git_branch)."""

    def __init__(self, project_dir: Path, branch: str = "") -> None:
        self.project_dir = project_dir
        self.branch = branch
        lock_path = project_dir / ".git" / LOCK_NAME
        if not lock_path.parent.is_dir():  # a worktree or submodule: lock beside the data instead
            lock_path = project_dir / f".{LOCK_NAME}"
        self._file_lock = FileLock(lock_path, LOCK_WAIT_S)

    async def _check_repo(self) -> None:
        code, out = await git(self.project_dir, "rev-parse", "--show-toplevel")
        if code != 0:
            raise GitError(TEXTS.get("not_a_repository", directory=self.project_dir.name))
        if self.branch:
            code, current = await git(self.project_dir, "symbolic-ref", "--short", "-q", "HEAD")
            if code != 0 or current.strip() != self.branch:
                raise GitError(
                    TEXTS.get(
                        "wrong_branch", current=current.strip() or TEXTS.get("no_branch"), branch=self.branch
                    )
                )

    async def check_clean(self, path: Path) -> None:
        """Refuse when the file has uncommitted edits (a developer's work in progress)."""
        rel = self._rel(path)
        code, out = await git(self.project_dir, "status", "--porcelain", "--", rel)
        if code != 0:
            raise GitError(TEXTS.get("git_status_failed"))
        if out.strip():
            raise GitError(TEXTS.get("file_uncommitted", file=rel))

    def _rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.project_dir.resolve()))
        except ValueError:
            raise GitError(TEXTS.get("file_outside")) from None

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        try:
            async with self._file_lock.held():
                yield
        except LockBusy:
            raise GitError(TEXTS.get("git_busy")) from None

    async def change(self, plan: Callable[[], tuple[Path, str, str]], author: Author) -> str:
        """Under the lock: check the repository, run `plan` (in a thread; it reads the data as it is
        now and returns the file, its new text and the commit message, or raises to refuse), check
        that file has no uncommitted edits, write it and commit only it. Returns the commit id."""
        async with self._locked():
            await self._check_repo()
            path, after, message = await asyncio.to_thread(plan)
            rel = self._rel(path)
            await self.check_clean(path)
            existed = path.exists()
            before = path.read_text(encoding="utf-8") if existed else ""
            if after == before:
                raise GitError(TEXTS.get("no_change"))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.workbench.tmp")
            tmp.write_text(after, encoding="utf-8")
            os.replace(tmp, path)
            try:
                return await self._commit(rel, author, message)
            except BaseException:
                # Put the file back: the working tree never keeps an uncommitted change of ours.
                await git(self.project_dir, "reset", "-q", "--", rel)
                if existed:
                    path.write_text(before, encoding="utf-8")
                else:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                raise

    async def _commit(self, rel: str, author: Author, message: str) -> str:
        name, email = author.ident
        env = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        code, _ = await git(self.project_dir, "add", "--", rel, env=env)
        if code != 0:
            raise GitError(TEXTS.get("git_add_failed"))
        code, _ = await git(self.project_dir, "commit", "-q", "-m", message, "--", rel, env=env)
        if code != 0:  # the repository's own hooks run too (a secret or personal-data scanner may refuse)
            raise GitError(TEXTS.get("git_commit_failed"))
        code, out = await git(self.project_dir, "rev-parse", "HEAD")
        return out.strip() if code == 0 else ""
