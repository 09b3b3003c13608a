"""The container, as far as a machine without a Docker engine can test it.

deploy/docker/Dockerfile is parsed (instructions, stages, ENV); every COPY source must exist
in the repository and survive /.dockerignore; and the image's exact command line,
ENTRYPOINT + CMD with the image's ENV, is run here on the embedded broker until its
HEALTHCHECK command (run verbatim) passes, then stopped with SIGTERM as `docker stop` does.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass
class Instruction:
    name: str  # upper case
    args: str  # the rest of the logical line, continuations joined
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical lines of a Dockerfile: comments dropped, backslash continuations joined
    (comment lines inside a continuation are skipped, as Docker does)."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        logical = " ".join(part for part in buf if part)
        buf = []
        name, _, args = logical.partition(" ")
        out.append(Instruction(name.upper(), args.strip(), start))
    assert not buf, "the Dockerfile ends inside a line continuation"
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.name == "FROM":
            result.append([])
        assert result, f"line {ins.line}: {ins.name} before the first FROM"
        result[-1].append(ins)
    return result


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument; shell form is refused: signals must reach fluvial."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.name == "ENV":
            for token in shlex.split(ins.args):
                key, sep, value = token.partition("=")
                assert sep, f"line {ins.line}: use ENV KEY=VALUE, not the legacy form"
                env[key] = value
    return env


def strip_flags(args: str) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    words = shlex.split(args)
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, words


# -- .dockerignore (moby's patternmatcher rules, enough for our file) ----------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
        i += 1
    return re.compile(out)


def load_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line[1:].strip() if negated else line).lstrip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def excluded(rules: list[tuple[bool, re.Pattern[str]]], relpath: str) -> bool:
    """The last rule matching the path or one of its parent directories decides."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negated, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            result = not negated
    return result


def tracked_files() -> list[str]:
    """What a fresh clone holds (build outputs and venvs are not in a clone)."""
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()


# -- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> list[list[Instruction]]:
    return stages(parse_dockerfile(DOCKERFILE.read_text()))


def final(dockerfile: list[list[Instruction]]) -> list[Instruction]:
    return dockerfile[-1]


def only(stage: list[Instruction], name: str) -> Instruction:
    found = [i for i in stage if i.name == name]
    assert len(found) == 1, f"expected one {name} in the final stage, found {len(found)}"
    return found[0]


def test_parser_reads_continuations_and_comments() -> None:
    text = "# c\nFROM a AS b\nRUN x \\\n  # inside\n  && y\n\nCMD [\"z\"]\n"
    assert [(i.name, i.args, i.line) for i in parse_dockerfile(text)] == [
        ("FROM", "a AS b", 2), ("RUN", "x && y", 3), ("CMD", '["z"]', 7)]


def test_images_are_python_311_slim(dockerfile: list[list[Instruction]]) -> None:
    for stage in dockerfile:
        image = stage[0].args.split()[0]
        assert image == "python:3.11-slim", stage[0]


def test_final_stage_has_the_required_instructions(dockerfile: list[list[Instruction]]) -> None:
    stage = final(dockerfile)
    names = {i.name for i in stage}
    assert {"USER", "HEALTHCHECK", "EXPOSE", "ENTRYPOINT", "CMD", "VOLUME", "WORKDIR"} <= names

    user = [i for i in stage if i.name == "USER"][-1].args.split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    # a numeric uid, so that Kubernetes' runAsNonRoot can verify it
    assert user.isdigit() and int(user) > 0
    assert any(f"--uid {user}" in i.args for i in stage if i.name == "RUN"), \
        "the USER's uid is created by useradd"

    entrypoint = exec_form(only(stage, "ENTRYPOINT").args)
    assert entrypoint == ["fluvial", "run"]
    cmd = exec_form(only(stage, "CMD").args)
    assert cmd[0] == "examples.airline.service:build"

    env = env_of(stage)
    port = env["FLUVIAL_HTTP_PORT"]
    assert only(stage, "EXPOSE").args.split() == [port]
    assert exec_form(only(stage, "VOLUME").args) == [env["FLUVIAL_STATE_DIR"]]
    assert env["FLUVIAL_APPLICATION_ID"] == "airline-delay"
    assert "FLUVIAL_BOOTSTRAP_SERVERS" not in env, "the broker address is deployment config"

    flags, words = strip_flags(only(stage, "HEALTHCHECK").args)
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags)
    assert words[0] == "CMD"
    check = exec_form(only(stage, "HEALTHCHECK").args.split("CMD", 1)[1].strip())
    assert check[:2] == ["python", "-c"] and "/healthz" in check[2]
    assert "curl" not in check[2] and "wget" not in check[2]


def test_runtime_has_openmp_and_the_ml_extra(dockerfile: list[list[Instruction]]) -> None:
    runs = " ".join(i.args for i in final(dockerfile) if i.name == "RUN")
    assert "libgomp1" in runs, "LightGBM needs libgomp1 (OpenMP) on slim images"
    assert "rm -rf /var/lib/apt/lists" in runs
    assert re.search(r"pip install .*\[ml\]", runs)


def test_copy_sources_exist_and_are_in_the_build_context(
        dockerfile: list[list[Instruction]]) -> None:
    rules = load_dockerignore(DOCKERIGNORE)
    files = tracked_files()
    stage_names = {s[0].args.split()[-1] for s in dockerfile if " AS " in s[0].args.upper()}
    checked = 0
    for stage in dockerfile:
        for ins in stage:
            if ins.name == "ADD":
                pytest.fail(f"line {ins.line}: use COPY, not ADD")
            if ins.name != "COPY":
                continue
            flags, words = strip_flags(ins.args)
            if "from" in flags:
                assert flags["from"] in stage_names, ins
                continue
            *sources, _dest = words
            for source in sources:
                path = REPO / source
                assert path.exists(), f"line {ins.line}: COPY source {source!r} is not in the repo"
                source = source.rstrip("/")
                inside = [f for f in files if f == source or f.startswith(source + "/")]
                assert inside, f"{source!r} holds no tracked file"
                kept = [f for f in inside if not excluded(rules, f)]
                assert kept, f"line {ins.line}: /.dockerignore excludes all of {source!r}"
                checked += 1
    assert checked >= 3


def test_dockerignore_keeps_the_app_and_drops_the_rest() -> None:
    rules = load_dockerignore(DOCKERIGNORE)
    for kept in ["pyproject.toml", "README.md", "src/fluvial/__init__.py",
                 "src/fluvial/cli/main.py", "examples/airline/flights.py",
                 "examples/airline/data/allyears2k_headers.csv.gz"]:
        assert not excluded(rules, kept), kept
    for dropped in [".git/HEAD", ".venv/bin/python", ".kafka/jars-4.1.2/x.jar",
                    "build/models/airline-delay.json", "tests/unit/test_x.py",
                    "src/fluvial/__pycache__/x.cpython-311.pyc", "bench/x.py", "docs/ml.md",
                    "src/fluvial.egg-info/PKG-INFO"]:
        assert excluded(rules, dropped), dropped


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_entrypoint_and_cmd_run_and_pass_the_healthcheck(
        dockerfile: list[list[Instruction]], tmp_path: Path) -> None:
    """`fluvial run <CMD>` with the image's ENV (state dir and port moved to this machine),
    on the embedded broker (no FLUVIAL_BOOTSTRAP_SERVERS, as in `docker run` without -e)."""
    stage = final(dockerfile)
    command = exec_form(only(stage, "ENTRYPOINT").args) + exec_form(only(stage, "CMD").args)
    assert command[:3] == ["fluvial", "run", "examples.airline.service:build"]
    image_env = env_of(stage)
    port = _free_port()
    image_env.update(FLUVIAL_STATE_DIR=str(tmp_path / "state"), FLUVIAL_HTTP_PORT=str(port),
                     PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "src")]))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLUVIAL_") and k != "PYTHONPATH"}
    env.update(image_env)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    healthcheck = exec_form(only(stage, "HEALTHCHECK").args.split("CMD", 1)[1].strip())
    healthcheck[0] = sys.executable  # the image's `python`

    def healthy() -> bool:
        return subprocess.run(healthcheck, env=env, capture_output=True, timeout=30).returncode == 0

    log = tmp_path / "container.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not healthy():
            assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"never healthy:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)  # docker stop
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert not healthy(), "the health check passes with nothing listening"
    assert "/healthz /readyz /metrics /stores /dashboard on port" in log.read_text()
