"""Migrations from a git repository: fetched with the ``git`` command into a cache, each commit's
migrations directory unpacked once into a directory of its own that never changes afterwards.

A plan made from a commit reads (and keeps pointing at) that commit's files: the bytes it was approved for
stay on disk for its run and rehearsal however the branch moves. Credentials come from the environment (an
HTTPS token, sent as a header on the command line of git's child process only) or an SSH key file, never
from the config; git's errors are shown with any token masked.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.config import REF_PATTERN, EnvironmentConfig, GitSourceConfig
from bot.errors import UserError
from bot.markup import quote

FETCH_TIMEOUT_SECONDS = 120
COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Checkout:
    environment: EnvironmentConfig  # with ``migrations_dir`` at the commit's files
    commit: str


def checkout(env: EnvironmentConfig, ref: str | None = None) -> Checkout:
    """The environment's migrations at ``ref`` (a branch, a tag or a commit; default: its ``ref``),
    fetched now. An environment with a plain directory is returned as it is, with no commit."""
    if env.git is None:
        if ref:
            raise UserError(f"{env.name} reads its migrations from a directory, not git: no --ref")
        return Checkout(env, "")
    source = env.git
    wanted = (ref or source.ref).strip()
    if not re.match(REF_PATTERN, wanted):
        raise UserError(f"`{quote(wanted[:60])}` is not a branch, tag or commit")
    repository = _repository(source.cache_dir, env.name)
    with _locked(repository):
        commit = _fetch(repository, source, wanted)
        return Checkout(_unpack(env, source, repository, commit), commit)


def at_commit(env: EnvironmentConfig, commit: str) -> EnvironmentConfig:
    """The environment at the commit a plan was made from (its rehearsal reads the files before it)."""
    if env.git is None or not commit:
        return env
    return checkout(env, commit).environment  # a commit in the cache is not fetched again


def _repository(cache_dir: Path, env_name: str) -> Path:
    repository = cache_dir / f"{env_name}.git"
    if not (repository / "HEAD").exists():
        repository.mkdir(parents=True, exist_ok=True)
        _git(repository, ["init", "--bare", "--quiet"], None)
    return repository


def _fetch(repository: Path, source: GitSourceConfig, wanted: str) -> str:
    """The commit ``wanted`` names, fetched from the source: a commit already here needs no fetch; a
    commit not here is looked for on the configured branch (servers rarely serve bare commits)."""
    if COMMIT.match(wanted):
        if _has(repository, wanted):
            return wanted
        _fetch(repository, source, source.ref)
        if not _has(repository, wanted):
            raise UserError(f"commit `{wanted}` is not on `{quote(source.ref)}` of {source.url}")
        return wanted
    _git(repository, ["fetch", "--quiet", "--no-tags", "--", source.url, wanted], source)
    return _git(repository, ["rev-parse", "FETCH_HEAD^{commit}"], None).strip()


def _unpack(
    env: EnvironmentConfig, source: GitSourceConfig, repository: Path, commit: str
) -> EnvironmentConfig:
    """The commit's migrations directory, unpacked once (into a temporary directory, then renamed)."""
    tree = source.cache_dir / env.name / commit
    if not tree.is_dir():
        tree.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{commit}-", dir=tree.parent))
        try:
            archive = ["archive", "--format=tar", commit, "--", source.path or "."]
            with tarfile.open(fileobj=io.BytesIO(_git_bytes(repository, archive, None))) as tar:
                tar.extractall(staging, filter="data")
            staging.rename(tree)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    directory = tree / source.path if source.path else tree
    if not directory.is_dir():
        raise UserError(f"`{quote(source.path)}` is not a directory at commit `{commit[:12]}`")
    return env.model_copy(update={"migrations_dir": directory.resolve()})


def _has(repository: Path, commit: str) -> bool:
    found = subprocess.run(
        ["git", "-C", str(repository), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


def _git(repository: Path, args: list[str], source: GitSourceConfig | None) -> str:
    return _git_bytes(repository, args, source).decode("utf-8", "replace")


def _git_bytes(repository: Path, args: list[str], source: GitSourceConfig | None) -> bytes:
    """Run git in the cache's repository with the source's credentials; its refusal as a UserError."""
    options: list[str] = []
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for a password nobody will type
    secret = None
    if source is not None and source.token_env:
        secret = os.environ.get(source.token_env)
        if not secret:
            raise UserError(f"git: {source.token_env} is not set (the token for {source.url})")
        options += ["-c", f"http.extraHeader=Authorization: Bearer {secret}"]
    if source is not None and source.ssh_key_file is not None:
        key = shlex.quote(str(source.ssh_key_file))  # git runs the command through a shell
        env["GIT_SSH_COMMAND"] = f"ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes"
    try:
        done = subprocess.run(
            ["git", *options, "-C", str(repository), *args],
            capture_output=True,
            env=env,
            timeout=FETCH_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"git {args[0]}: no answer within {FETCH_TIMEOUT_SECONDS} s") from None
    except FileNotFoundError:
        raise UserError(
            "git is not installed: the migrations of a git environment are fetched with it"
        ) from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = said[-1] if said else f"exit {done.returncode}"
        if secret:
            reason = reason.replace(secret, "***")
        raise UserError(f"git {args[0]}: {reason.removeprefix('fatal: ')}")
    return done.stdout


@contextmanager
def _locked(repository: Path) -> Iterator[None]:
    """One fetch at a time per repository, across this host's processes (serve's workers, the CLI)."""
    with open(repository / "migrate-bot.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
