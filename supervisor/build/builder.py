"""One classic (non-BuildKit) build: stages, steps, layers and the cache.

Theory of operation: :meth:`Builder.build` walks the Dockerfile's stages in order. Every
step ends with an image (Docker's classic builder does the same: each step's result is
an image whose parent is the previous step's), so the cache is simply "step key →
image": the key is the parent image id, the instruction after substitution (its history
text), the RUN build args and, for COPY/ADD, the checksum of what is copied (contents,
names, modes, owners: not mtimes). A hit skips the step; a miss runs it:

- metadata instructions change the run config and add an ``empty_layer`` history entry;
  WORKDIR also makes its directory in an overlay of the image, and gets a layer when
  that made anything (as the classic builder, which commits a container for it);
- RUN creates a real container from the current image through the
  :class:`ContainerManager` (the stage's env, user, workdir and shell), streams its
  output, and turns its overlay upper dir into a layer (``commit.layer_from_upper``), then
  removes the container;
- COPY/ADD gathers its sources into one tar (``context.collect``), extracts it into an
  overlay of the current image with the ``docker cp`` extractor, and turns that
  overlay's upper dir into a layer.

Cancellation: a cancelled build (the client hung up) removes its container and mounts
on the way out (shielded); nothing is tagged, because tagging is the last thing done.
Errors: DockerfileParseError/InvalidArgument (400) for the Dockerfile and the context,
NotFound for an unknown base image, BerthError (500) for a failing step; the API layer
reports them in-band once the stream has started.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

from store import build as cache_rows
from store.db import Database
from supervisor.build import instructions as ins_mod
from supervisor.build.context import (
    BuildFS,
    CopyRequest,
    InlineFile,
    collect,
    iter_mode,
    lookup_owner,
    stat_kind,
)
from supervisor.build.dockerfile import (
    Dockerfile,
    DockerfileParseError,
    Instruction,
    parse,
    parse_line,
)
from supervisor.build.dockerignore import IgnoreError, Matcher, parse_dockerignore
from supervisor.build.expand import quote_word
from supervisor.containers.copy import ContainerFS
from supervisor.containers.copypath import parse_container_path
from supervisor.containers.manager import ContainerManager
from supervisor.errors import BerthError, InvalidArgument, NoSuchImage, NotFound
from supervisor.images import reference
from supervisor.images.commit import layer_from_upper
from supervisor.images.store import ImageStore, encode_config, now_rfc3339
from supervisor.model import Image, Layer
from supervisor.runtime import rootfs as rootfs_mod

log = structlog.get_logger()


class RunFailed(BerthError):
    """A RUN step exited non-zero; ``code`` is its exit status (the client exits with it)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


Emit = Callable[[dict[str, Any]], Awaitable[None]]
Pull = Callable[[str], Awaitable[Image]]

METADATA = frozenset(
    {
        "cmd", "entrypoint", "env", "label", "expose", "workdir", "user", "volume",
        "stopsignal", "healthcheck", "shell", "onbuild", "maintainer",
    }
)  # fmt: skip


@attrs.frozen
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str | None] = attrs.field(factory=dict)
    labels: Mapping[str, str] = attrs.field(factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    network_mode: str = "default"


class BuildCache:
    """The step cache in SQLite (``migrations/0005_build_cache.sql``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def lookup(self, key: str) -> str | None:
        return await self._db.run(cache_rows.lookup, key, time.time_ns())

    async def put(self, key: str, image_id: str) -> None:
        await self._db.run(cache_rows.put, key, image_id, time.time_ns())

    async def prune(
        self, images: ImageStore, in_use: Callable[[str], Awaitable[list[str]]]
    ) -> tuple[list[str], int]:
        """Forget every entry and delete the step images nothing else needs: the
        dangling ones (untagged, unused, no image made from them) with their untagged
        parents, as ``image prune`` does; a tagged image's steps stay its parents
        (``rmi`` of it takes them). Returns the deleted entries' keys and the bytes
        reclaimed."""
        ids = set(await self._db.run(cache_rows.cached_images))
        keys = await self._db.run(cache_rows.delete_all)
        _, reclaimed = await images.prune(
            dangling_only=True, select=lambda image: image.id in ids, in_use=in_use
        )
        return keys, reclaimed


@attrs.define
class _Stage:
    name: str
    index: int
    config: dict[str, Any]  # the whole image config (config, history, rootfs...)
    layers: list[Layer]
    image: Image | None  # None: scratch and nothing committed yet
    args: dict[str, str] = attrs.field(factory=dict)  # ARGs in scope with a value

    @property
    def run_config(self) -> dict[str, Any]:
        cfg = self.config.setdefault("config", {})
        assert isinstance(cfg, dict)
        return cfg

    @property
    def parent_key(self) -> str:
        return self.image.id if self.image is not None else "scratch"


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _scratch_config() -> dict[str, Any]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }


class Builder:
    """Runs builds against the daemon's stores. One instance serves every build."""

    def __init__(
        self,
        *,
        images: ImageStore,
        containers: ContainerManager,
        cache: BuildCache,
        pull: Pull,
    ) -> None:
        self._images = images
        self._containers = containers
        self.cache = cache
        self._pull = pull

    async def build(self, context: Path, opts: BuildOptions, emit: Emit) -> Image:
        """Build the Dockerfile in the extracted ``context``; tag the result.

        Errors: see the module docstring. Nothing is tagged unless every step succeeded.
        """
        df = self._read_dockerfile(context, opts.dockerfile)
        await trio.to_thread.run_sync(_apply_dockerignore, context)
        run = _Run(self, context, opts, df, emit)
        image = await run.execute()
        await emit({"aux": {"ID": image.id}})
        await emit({"stream": f"Successfully built {_short(image.id)}\n"})
        for tag in opts.tags:
            await self._images.tag(image.id, tag)
            await emit(
                {"stream": f"Successfully tagged {reference.familiar(reference.normalize(tag))}\n"}
            )
        return image

    def _read_dockerfile(self, context: Path, name: str) -> Dockerfile:
        fs = ContainerFS(context, [], container="context")
        data = fs.read_file("/" + name.lstrip("/"), limit=16 << 20)
        if data is None:
            raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")
        return parse(data.decode("utf-8", "replace"))


#: The most ADD fetches from one URL (it is held in memory while the layer is made).
MAX_DOWNLOAD = 512 << 20


def _download(url: str) -> tuple[str, InlineFile]:
    """Fetch ``url`` for ADD: (file name, the file). Raises InvalidArgument naming the
    URL when it cannot be fetched.

    As Docker's classic builder: the file is 0600 (``--chmod`` may change that) and its
    mtime is the response's ``Last-Modified``, 0 when absent or unreadable.
    """
    import urllib.error
    import urllib.parse
    import urllib.request

    name = posixpath.basename(urllib.parse.urlsplit(url).path) or "download"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read(MAX_DOWNLOAD + 1)
            last_modified = response.headers.get("Last-Modified")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InvalidArgument(f"failed to fetch {url}: {exc}") from None
    if len(data) > MAX_DOWNLOAD:
        raise InvalidArgument(f"failed to fetch {url}: larger than {MAX_DOWNLOAD} bytes")
    return name, InlineFile(data, mode=0o600, mtime=_http_time(last_modified))


def _http_time(value: str | None) -> int:
    """An HTTP date (``Last-Modified``) as a Unix time; 0 when absent or unreadable."""
    import email.utils

    if not value:
        return 0
    try:
        return max(0, int(email.utils.parsedate_to_datetime(value).timestamp()))
    except (TypeError, ValueError, OverflowError):
        return 0


def _has_entries(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is not None


def _apply_dockerignore(context: Path) -> None:
    """Remove what the context's ``.dockerignore`` excludes, as Docker's daemon does
    (a client may send more: the docker CLI adds a Dockerfile from outside the context
    and names it in ``.dockerignore``). Links are removed, never followed."""
    ignore = context / ".dockerignore"
    if not ignore.is_file() or ignore.is_symlink():
        return
    try:
        matcher = Matcher(parse_dockerignore(ignore.read_text(errors="replace")))
    except IgnoreError as exc:
        raise InvalidArgument(f"failed to parse .dockerignore: {exc}") from None
    for top, dirs, files in os.walk(context, topdown=False):
        rel_top = os.path.relpath(top, context)
        for name in files:
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            if matcher.matches(rel):
                os.unlink(os.path.join(top, name))
        for name in dirs:
            rel = name if rel_top == "." else f"{rel_top}/{name}"
            path = os.path.join(top, name)
            if os.path.islink(path):
                if matcher.matches(rel):
                    os.unlink(path)
            elif matcher.matches(rel) and not os.listdir(path):
                os.rmdir(path)


class _Run:
    """The state of one build while it runs."""

    def __init__(
        self, b: Builder, context: Path, opts: BuildOptions, df: Dockerfile, emit: Emit
    ) -> None:
        self.b = b
        self.context = context
        self.opts = opts
        self.df = df
        self.emit = emit
        self.stages: list[_Stage] = []
        self.meta_args: dict[str, str | None] = {}
        self.used_args: set[str] = set()
        self.step = 0
        self.total = 0

    async def say(self, text: str) -> None:
        await self.emit({"stream": text})

    def _plan(self) -> tuple[list[Instruction], list[list[Instruction]]]:
        """Meta ARGs and the stages up to the target (with ``--label`` as a last LABEL)."""
        meta: list[Instruction] = []
        stages: list[list[Instruction]] = []
        for ins in self.df.instructions:
            if ins.keyword == "from":
                stages.append([ins])
            elif not stages:
                if ins.keyword != "arg":
                    raise DockerfileParseError(ins.line, "no build stage in current context")
                meta.append(ins)
            else:
                stages[-1].append(ins)
        if not stages:
            raise InvalidArgument("the Dockerfile (Dockerfile) cannot be empty")
        if self.opts.target:
            names = [_stage_name(s[0]) for s in stages]
            try:
                last = names.index(self.opts.target.lower())
            except ValueError:
                raise InvalidArgument(
                    f"failed to reach build target {self.opts.target} in Dockerfile"
                ) from None
            stages = stages[: last + 1]
        if self.opts.labels:
            text = "LABEL " + " ".join(
                f"{quote_word(k)}={quote_word(v)}" for k, v in sorted(self.opts.labels.items())
            )
            stages[-1].append(parse_line(text, line=stages[-1][-1].line))
        return meta, stages

    async def execute(self) -> Image:
        meta, stages = self._plan()
        self.total = sum(len(s) for s in stages)
        for ins in meta:
            for word in ins.args:
                name, default = ins_mod.parse_arg(ins, word)
                value = self.opts.build_args.get(name)
                self.meta_args[name] = value if value is not None else default
                if name in self.opts.build_args:
                    self.used_args.add(name)
        for index, instructions in enumerate(stages):
            stage = await self._from(index, instructions[0])
            for ins in instructions[1:]:
                await self._step(stage, ins)
            self.stages.append(stage)
        final = self.stages[-1]
        if final.image is None:
            final.image = await self._commit(final, "", None, key=None)
        unused = sorted(set(self.opts.build_args) - self.used_args - ins_mod.PROXY_ARGS)
        if unused:
            await self.say(
                f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n"
            )
        return final.image

    # -- FROM ----------------------------------------------------------------------------

    async def _from(self, index: int, ins: Instruction) -> _Stage:
        self.step += 1
        await self.say(f"Step {self.step}/{self.total} : {ins.original}\n")
        ins_mod.check_flags(ins)
        if len(ins.args) not in (1, 3) or (len(ins.args) == 3 and ins.args[1].lower() != "as"):
            raise DockerfileParseError(ins.line, "FROM requires either one or three arguments")
        env = {k: v for k, v in self.meta_args.items() if v is not None}
        name = ins_mod.expand(ins, ins.args[0], env, self.df.escape)
        if not name:
            raise DockerfileParseError(
                ins.line, "base name (" + ins.args[0] + ") should not be blank"
            )
        stage_name = ins.args[2].lower() if len(ins.args) == 3 else ""
        previous = self._find_stage(name)
        if previous is not None:
            assert previous.image is not None
            base_cfg = json.loads(previous.image.raw_config)
            stage = _Stage(stage_name, index, base_cfg, list(previous.layers), previous.image)
        elif name.lower() == "scratch":
            stage = _Stage(stage_name, index, _scratch_config(), [], None)
        else:
            image = await self._base_image(name)
            layers = [await self.b._images.layer(c) for c in image.layers]
            stage = _Stage(stage_name, index, json.loads(image.raw_config), layers, image)
        if stage.image is not None:
            await self.say(f" ---> {_short(stage.image.id)}\n")
        triggers = list(stage.run_config.get("OnBuild") or [])
        if triggers:
            await self.say(
                f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n"
            )
            stage.run_config["OnBuild"] = None
            for text in triggers:
                trigger = parse_line(text, line=ins.line, escape=self.df.escape)
                if trigger.keyword in ("onbuild", "from", "maintainer"):
                    raise DockerfileParseError(
                        ins.line, f"{trigger.keyword.upper()} isn't allowed as an ONBUILD trigger"
                    )
                await self._step(stage, trigger, announce=False)
        return stage

    def _find_stage(self, name: str) -> _Stage | None:
        for stage in self.stages:
            if stage.name and stage.name == name.lower():
                return stage
        if name.isdigit() and int(name) < len(self.stages):
            return self.stages[int(name)]
        return None

    async def _base_image(self, name: str) -> Image:
        try:
            ref = str(reference.parse(name).with_default_tag())
        except InvalidArgument as exc:
            raise InvalidArgument(f"invalid reference format: {exc}") from None
        if not self.opts.pull:
            with contextlib.suppress(NoSuchImage):
                return await self.b._images.resolve(ref)
        return await self.b._pull(ref)

    # -- steps ---------------------------------------------------------------------------

    async def _step(self, stage: _Stage, ins: Instruction, *, announce: bool = True) -> None:
        if announce:
            self.step += 1
            await self.say(f"Step {self.step}/{self.total} : {ins.original}\n")
        k = ins.keyword
        if k == "from":
            raise DockerfileParseError(ins.line, "FROM is not allowed here")
        if k == "arg":
            await self._arg(stage, ins)
        elif k in METADATA:
            await self._metadata(stage, ins)
        elif k == "run":
            await self._run(stage, ins)
        elif k in ("copy", "add"):
            await self._copy(stage, ins)
        else:  # pragma: no cover - the parser knows only these keywords
            raise DockerfileParseError(ins.line, f"unknown instruction: {k.upper()}")
        assert stage.image is not None
        await self.say(f" ---> {_short(stage.image.id)}\n")

    def _env(self, stage: _Stage) -> dict[str, str]:
        return ins_mod.stage_env(stage.run_config, stage.args)

    async def _cached(self, stage: _Stage, key: str) -> bool:
        if self.opts.no_cache:
            return False
        image_id = await self.b.cache.lookup(key)
        if image_id is None:
            return False
        try:
            image = await self.b._images.resolve(image_id)
            layers = [await self.b._images.layer(c) for c in image.layers]
        except NotFound:
            return False  # a step image (or one of its layers) was deleted meanwhile
        stage.image, stage.layers, stage.config = image, layers, json.loads(image.raw_config)
        await self.say(" ---> Using cache\n")
        return True

    def _key(self, stage: _Stage, *parts: str) -> str:
        blob = json.dumps([stage.parent_key, *parts])
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    async def _arg(self, stage: _Stage, ins: Instruction) -> None:
        ins_mod.check_flags(ins)
        shown: list[str] = []
        for word in ins.args:
            name, default = ins_mod.parse_arg(ins, word)
            if default is not None:
                default = ins_mod.expand(ins, default, self._env(stage), self.df.escape)
            elif name in self.meta_args:
                default = self.meta_args[name]
            if name in self.opts.build_args:
                self.used_args.add(name)
            given = self.opts.build_args.get(name)
            value = given if given is not None else default
            if value is not None:
                stage.args[name] = value
            shown.append(word)
        detail = "ARG " + " ".join(shown)
        key = self._key(stage, ins_mod.created_by(ins, stage.run_config, detail))
        if not await self._cached(stage, key):
            await self._commit(
                stage, ins_mod.created_by(ins, stage.run_config, detail), None, key=key
            )

    async def _metadata(self, stage: _Stage, ins: Instruction) -> None:
        new = ins_mod.apply_metadata(ins, stage.run_config, self._env(stage), escape=self.df.escape)
        detail = _describe(ins, new, stage.run_config, self._env(stage), self.df.escape)
        by = ins_mod.created_by(ins, stage.run_config, detail)
        # WORKDIR's key says it makes the directory: entries cached before it did miss.
        key = self._key(stage, by, *(["mkdir"] if ins.keyword == "workdir" else []))
        if await self._cached(stage, key):
            return
        layer = None
        if ins.keyword == "workdir":
            layer = await self._make_workdir(stage, new["WorkingDir"])
        stage.config["config"] = new
        if ins.keyword == "maintainer":
            stage.config["author"] = ins.args[0]
        await self._commit(stage, by, layer, key=key)

    async def _make_workdir(self, stage: _Stage, path: str) -> Layer | None:
        """Make WORKDIR's directory in the image, as Docker's classic builder does: it
        commits the step's container, so the step has a layer when the directory (or a
        parent) was made, and is an ``empty_layer`` one when it existed already."""
        async with self._mounted(stage.layers) as (root, upper):
            fs = BuildFS(root, [], container="build")
            await trio.to_thread.run_sync(fs.make_workdir, path)
            if not await trio.to_thread.run_sync(_has_entries, upper):
                return None
            return await self._layer_from(upper, stage)

    async def _commit(
        self, stage: _Stage, created_by: str, layer: Layer | None, *, key: str | None
    ) -> Image:
        config = json.loads(json.dumps(stage.config))
        created = now_rfc3339()
        config["created"] = created
        if layer is not None:
            config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            config["rootfs"]["diff_ids"] = [*config["rootfs"].get("diff_ids", []), layer.diff_id]
        if created_by:
            entry: dict[str, Any] = {"created": created, "created_by": created_by}
            if layer is None:
                entry["empty_layer"] = True
            config["history"] = [*(config.get("history") or []), entry]
        layers = [*stage.layers, *([layer] if layer is not None else [])]
        parent = stage.image.id if stage.image is not None else ""
        image = await self.b._images.add_image(encode_config(config), layers, parent=parent)
        if key is not None:
            await self.b.cache.put(key, image.id)
        stage.image, stage.layers, stage.config = image, layers, config
        return image

    # -- RUN -----------------------------------------------------------------------------

    async def _run(self, stage: _Stage, ins: Instruction) -> None:
        ins_mod.check_flags(ins)
        cfg = stage.run_config
        config_env = list(cfg.get("Env") or [])
        declared = {e.partition("=")[0] for e in config_env}
        run_args = {k: v for k, v in stage.args.items() if k not in declared}
        history_args = {k: v for k, v in run_args.items() if k not in ins_mod.PROXY_ARGS}
        by = ins_mod.build_arg_prefix(history_args) + ins_mod.created_by(ins, cfg)
        key = self._key(stage, by)
        if await self._cached(stage, key):
            return
        if stage.image is None:
            stage.image = await self._commit(stage, "", None, key=None)
        argv = ins_mod.run_argv(ins, cfg)
        body: dict[str, Any] = {
            "Image": stage.image.id,
            "Entrypoint": argv,
            "Cmd": None,
            "Env": [*config_env, *(f"{k}={v}" for k, v in run_args.items())],
            "User": cfg.get("User") or "",
            "WorkingDir": cfg.get("WorkingDir") or "",
            "Labels": {},
            "HostConfig": {"NetworkMode": self.opts.network_mode or "default"},
        }
        m = self.b._containers
        record = await m.create(body, name=None)
        cid = record.id
        succeeded = False
        try:
            await self.say(f" ---> Running in {cid[:12]}\n")
            h = m.get(cid)
            live = h.hub.subscribe(buffer=65536)
            wait = m.waiter(cid, "next-exit")
            await m.start(cid)
            async with live:
                async for entry in live:
                    await self.say(entry.data.decode("utf-8", "replace"))
            code, _ = await wait()
            if code != 0:
                shown = json.dumps(argv) if ins.json else " ".join(argv)
                raise RunFailed(f"The command '{shown}' returned a non-zero code: {code}", code)
            layer = await self._layer_from(m.upper_dir(cid), stage)
            succeeded = True
        finally:
            # As the classic builder: --rm removes the step's container after it
            # succeeded; a failed one stays for inspection unless --force-rm.
            if self.opts.force_remove or (self.opts.remove and succeeded):
                with trio.CancelScope(shield=True):
                    with contextlib.suppress(BerthError):
                        await m.remove(cid, force=True, volumes=True)
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await self.say(f"Removing intermediate container {cid[:12]}\n")
        await self._commit(stage, by, layer, key=key)

    async def _layer_from(self, upper: Path, stage: _Stage) -> Layer:
        parent = stage.layers[-1].chain_id if stage.layers else None
        return await layer_from_upper(self.b._images, upper, parent=parent, prefix="build-")

    # -- COPY / ADD ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _mounted(self, layers: list[Layer]) -> AsyncIterator[tuple[Path, Path]]:
        """An overlay of ``layers`` with a fresh upper dir: (root, upper)."""
        work = Path(tempfile.mkdtemp(dir=self.b._images.tmp_dir, prefix="build-mnt-"))
        root, upper, wk, empty = work / "root", work / "upper", work / "work", work / "empty"
        for d in (root, upper, wk, empty):
            d.mkdir()
        lowers = [self.b._images.layer_path(layer.chain_id) for layer in reversed(layers)] or [
            empty
        ]
        mounted = False
        try:
            await trio.to_thread.run_sync(rootfs_mod.mount_overlay, lowers, upper, wk, root)
            mounted = True
            yield root, upper
        finally:
            with trio.CancelScope(shield=True):
                if mounted:
                    await trio.to_thread.run_sync(rootfs_mod.unmount, root)
                await trio.to_thread.run_sync(shutil.rmtree, work, True)

    async def _copy(self, stage: _Stage, ins: Instruction) -> None:
        ins_mod.check_flags(ins)
        x_env = self._env(stage)
        words = [ins_mod.expand(ins, w, x_env, self.df.escape) for w in ins.args]
        inline = {
            d.name: InlineFile(ins_mod.heredoc_text(ins, d, x_env).encode()) for d in ins.heredocs
        }
        sources = list(words[:-1])
        sources = [
            w.removeprefix("<<-").removeprefix("<<").strip("'\"") if w.startswith("<<") else w
            for w in sources
        ]
        if not words:
            raise DockerfileParseError(
                ins.line, f"{ins.keyword.upper()} requires at least two arguments"
            )
        dest = words[-1]
        if not sources:
            raise DockerfileParseError(
                ins.line, f"{ins.keyword.upper()} requires at least two arguments"
            )
        if any(s.startswith(("http://", "https://")) for s in sources):
            if ins.keyword != "add":
                raise InvalidArgument("source can't be a URL for COPY")
            # A remote file is fetched by berthd and added as it came (never extracted,
            # as Docker does), named after the URL's last path segment.
            fetched: list[str] = []
            for s_ in sources:
                if s_.startswith(("http://", "https://")):
                    name, item = await trio.to_thread.run_sync(_download, s_)
                    inline[name] = item
                    fetched.append(name)
                else:
                    fetched.append(s_)
            sources = fetched
        from_ref = ins.flag("from")
        workdir = stage.run_config.get("WorkingDir") or "/"
        dest_abs = dest if dest.startswith("/") else workdir.rstrip("/") + "/" + dest
        chmod = iter_mode(ins.flag("chmod") or "") if ins.flag("chmod") else None
        async with contextlib.AsyncExitStack() as stack:
            if from_ref is not None:
                source_root, source_name = await self._source_root(stack, ins, from_ref)
            else:
                source_root, source_name = self.context, "context"
            root, upper = await stack.enter_async_context(self._mounted(stage.layers))
            target_fs = ContainerFS(root, [], container="build")
            source_fs = ContainerFS(source_root, [], container=source_name)
            chown = ins.flag("chown")
            owner = await trio.to_thread.run_sync(lookup_owner, target_fs, chown) if chown else None
            dest_is_dir = (
                dest.endswith("/")
                or dest in (".", "..")
                or (await trio.to_thread.run_sync(stat_kind, target_fs, dest_abs) == "dir")
            )
            req = CopyRequest(
                sources=tuple(sources),
                dest=dest_abs,
                dest_is_dir=dest_is_dir,
                owner=owner,
                chmod=chmod,
                extract_archives=ins.keyword == "add",
                from_context=from_ref is None,
            )
            work = Path(tempfile.mkdtemp(dir=self.b._images.tmp_dir, prefix="build-copy-"))
            stack.callback(shutil.rmtree, work, True)
            try:
                collected = await trio.to_thread.run_sync(
                    lambda: collect(source_fs, req, work, inline=inline)
                )
            except InvalidArgument as exc:
                raise InvalidArgument(
                    str(exc).replace("COPY failed", f"{ins.keyword.upper()} failed")
                ) from None
            detail = f"{ins.keyword.upper()} {collected.checksum} in {dest_abs} "
            by = ins_mod.created_by(ins, stage.run_config, detail)
            key = self._key(stage, by, from_ref or "", json.dumps(owner), str(chmod))
            if await self._cached(stage, key):
                return

            def extract() -> None:
                target = target_fs.open_target(parse_container_path("/"), shown="/")
                try:
                    with open(collected.tar, "rb") as f:
                        target.extract(f)
                finally:
                    target.close()

            await trio.to_thread.run_sync(extract)
            layer = await self._layer_from(upper, stage)
        await self._commit(stage, by, layer, key=key)

    async def _source_root(
        self, stack: contextlib.AsyncExitStack, ins: Instruction, ref: str
    ) -> tuple[Path, str]:
        stage = self._find_stage(ref)
        if stage is not None:
            layers = stage.layers
        else:
            try:
                image = await self._base_image(ref)
            except NotFound:
                raise InvalidArgument(
                    f"Dockerfile parse error line {ins.line}: invalid from flag value {ref}: "
                    "no stage or image with that name"
                ) from None
            layers = [await self.b._images.layer(c) for c in image.layers]
        root, _ = await stack.enter_async_context(self._mounted(layers))
        return root, ref


def _stage_name(ins: Instruction) -> str:
    return ins.args[2].lower() if len(ins.args) == 3 else ""


def _go_list(items: list[str]) -> str:
    """A string slice as Go's ``%v`` prints it (Docker's SHELL and VOLUME history)."""
    return "[" + " ".join(items) + "]"


def _describe(
    ins: Instruction,
    new: Mapping[str, Any],
    old: Mapping[str, Any],
    env: Mapping[str, str],
    escape: str,
) -> str:
    """The history text of a metadata step (values after substitution, as Docker)."""

    def words() -> list[str]:
        expanded = [ins_mod.expand(ins, w, env, escape) for w in ins.args]
        return expanded if ins.json else [p for w in expanded for p in w.split()]

    k = ins.keyword
    if k in ("cmd", "entrypoint"):
        value = new.get("Cmd" if k == "cmd" else "Entrypoint") or []
        return f"{k.upper()} {json.dumps(value)}"
    if k == "env":
        added = [e for e in new.get("Env") or [] if e not in (old.get("Env") or [])]
        return "ENV " + " ".join(added)
    if k == "label":
        labels = new.get("Labels") or {}
        before = old.get("Labels") or {}
        return "LABEL " + " ".join(
            f"{key}={labels[key]}" for key in sorted(labels) if before.get(key) != labels[key]
        )
    if k == "workdir":
        return f"WORKDIR {new.get('WorkingDir')}"
    if k == "user":
        return f"USER {new.get('User')}"
    if k == "expose":
        return "EXPOSE " + " ".join(words())  # this instruction's ports, as written
    if k == "volume":
        return f"VOLUME {_go_list(words())}"
    if k == "shell":
        return f"SHELL {_go_list(list(new.get('Shell') or []))}"
    if k == "healthcheck":
        return f"HEALTHCHECK {json.dumps(new.get('Healthcheck'), sort_keys=True)}"
    if k == "stopsignal":
        return f"STOPSIGNAL {new.get('StopSignal')}"
    return ins.original
