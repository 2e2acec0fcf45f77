"""Typed configuration, merged from layers: defaults < user file < workspace file < env < flags.

Each section is a pydantic model with ``extra="forbid"``; plugins contribute sections
through ``llmos_register_config``. Errors name the source (file, variable or flag), the
key and what is allowed.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

ENV_PREFIX = "LLMOS_"
# Variables that are not config keys (the workspace and plugin selection are read earlier).
RESERVED_ENV = {
    "LLMOS_WORKSPACE", "LLMOS_LOAD_PLUGINS", "LLMOS_DISABLE_PLUGINS", "LLMOS_PLUGINS",
    "LLMOS_PLUGIN_DIR",
}


class ConfigError(Exception):
    """The configuration is invalid; the message names the source, the key and the fix."""


class Section(BaseModel):
    """Base for config sections: unknown keys are errors. A section that no layer sets is
    made from its defaults when first read (``Config.section``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BudgetConfig(Section):
    run_cap_usd: float = Field(
        1.0, ge=0, allow_inf_nan=False,
        description="Most a single paid run may spend; 0 means no paid work.",
    )
    low_balance_usd: float = Field(
        0.5, ge=0, description="Below this balance the dispatcher prefers free modes."
    )


class CortexConfig(Section):
    model: str | None = Field(None, description="Claude model; None uses the CLI's default.")
    fallback_model: str | None = None
    max_turns: int = Field(30, ge=1)
    system_prompt: str | None = Field(None, description="Appended to Claude Code's prompt.")
    load_user_settings: bool = Field(
        False, description="Load Claude Code's own user/project settings files."
    )
    timeout_s: float = Field(900.0, gt=0, description="Watchdog deadline for one run.")
    retry_max_s: float = Field(
        60.0, ge=0, le=3600,
        description="Most time spent retrying one model request (429/5xx/timeouts); "
        "retry-after is honoured within it.",
    )
    request_timeout_s: float = Field(
        120.0, gt=0, le=3600,
        description="A model response that sends nothing for this long is abandoned.",
    )
    transcripts: Literal["remove", "redact", "keep"] = Field(
        "remove",
        description="Claude Code's transcripts (kept under .llmos/cortex/) after a run: "
        "removed, redacted, or kept as written.",
    )
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="USD per million (input, output) tokens by model-id prefix; adds to or "
        "overrides llmos's table. Unknown models are priced as the dearest known one.",
    )
    prompt_estimate: Literal["count_tokens", "bytes"] = Field(
        "count_tokens",
        description="How a request's prompt is sized before it is paid for: the service's "
        "free count_tokens endpoint, or the request's size in bytes (an upper bound).",
    )


class MemoryConfig(Section):
    backend: str = Field("sqlite", description="Named memory driver.")
    inject_max_chars: int = Field(2000, ge=0, description="Most memory text added to a goal.")
    dsn: str | None = Field(
        None, description="PostgreSQL connection string for memory.backend = 'postgres' "
        "(postgresql://user:password@host:5432/db); unset: LLMOS_DATABASE_URL. Shown with "
        "its password masked.",
    )

    @field_serializer("dsn")
    def _mask_dsn(self, dsn: str | None) -> str | None:
        from llmos.memory.postgres import mask_dsn

        return mask_dsn(dsn)


class SecurityConfig(Section):
    backend: str = Field("layered", description="Named policy driver.")
    allowed_hosts: list[str] = Field(default_factory=list)
    denied_hosts: list[str] = Field(default_factory=list)
    sandbox_network: bool = Field(False, description="Let sandboxed commands use the network.")
    sandbox_max_file_bytes: int = Field(
        1 << 30, ge=1, description="Largest file a sandboxed command may write (RLIMIT_FSIZE)."
    )
    sandbox_max_processes: int = Field(
        512, ge=1, description="Most processes a sandboxed command may run (RLIMIT_NPROC; "
        "not enforced for root)."
    )
    sandbox_max_memory_bytes: int = Field(
        8 << 30, ge=1 << 24, description="Address space of each sandboxed process (RLIMIT_AS)."
    )


class DispatchConfig(Section):
    follower_threshold: float = Field(0.92, ge=0, le=1)
    mixed_threshold: float = Field(0.75, ge=0, le=1)


class KernelConfig(Section):
    tool_timeout_s: float = Field(300.0, gt=0, description="Watchdog deadline for one tool call; "
                                  "a command's whole process tree is killed at it.")
    max_output_bytes: int = Field(
        100_000, ge=1_000, description="Most output kept from one tool call (each of a "
        "command's stdout and stderr): head and tail, with a '[... truncated N bytes ...]' "
        "marker between."
    )
    event_queue_size: int = Field(10_000, ge=1)
    interactive: Literal["auto", "always", "never"] = Field(
        "auto", description="Whether 'ask' verdicts prompt a human (auto: when stdin is a tty)."
    )


class PluginsConfig(Section):
    disable: list[str] = Field(
        default_factory=list,
        description="Plugins not to load, by the name llmos plugins shows (built-ins "
        "included); adds to LLMOS_DISABLE_PLUGINS. Read before the plugins load.",
    )


CORE_SECTIONS: dict[str, type[Section]] = {
    "kernel": KernelConfig,
    "budget": BudgetConfig,
    "cortex": CortexConfig,
    "memory": MemoryConfig,
    "security": SecurityConfig,
    "dispatch": DispatchConfig,
    "plugins": PluginsConfig,
}


@dataclass
class Layer:
    """One source of settings: a nested dict and where each value came from."""

    name: str
    values: dict[str, Any]
    origins: dict[tuple[str, ...], str] = field(default_factory=dict)
    path: Path | None = None  # a config file (read, or looked for and absent)
    exists: bool = True


def user_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("llmos")) / "config.toml"


def read_toml_layer(path: Path) -> Layer | None:
    """A config file as a layer, or None when it does not exist.

    It may vanish between the check and the read: while a sandboxed command runs, the
    sandbox holds an empty placeholder at a protected path that does not exist (so the
    command cannot create it), and removes it afterwards. Gone is the same as absent.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory: remove it or make it a "
                          "TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    layer = Layer(str(path), data, path=path)
    _record_origins(layer, data, (), str(path))
    return layer


def _record_origins(layer: Layer, data: Mapping[str, Any], prefix: tuple[str, ...], src: str):
    for key, value in data.items():
        path = (*prefix, key)
        layer.origins[path] = src
        if isinstance(value, Mapping) and len(path) < 2:
            _record_origins(layer, value, path, src)


def _parse_scalar(raw: str) -> Any:
    """JSON for lists, tables and quoted strings; anything else stays a string that the
    section's model coerces ("9" → 9, "true" → True) or rejects with a clear message."""
    if raw.strip()[:1] in ("[", "{", '"'):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def env_layer(environ: Mapping[str, str]) -> Layer:
    """``LLMOS_SECTION__KEY=value`` variables (values parsed as JSON when they parse)."""
    layer = Layer("environment", {})
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        layer.values.setdefault(section, {})[key] = _parse_scalar(raw)
        layer.origins[(section, key)] = f"environment variable {name}"
        layer.origins.setdefault((section,), f"environment variable {name}")
    return layer


def flags_layer(assignments: list[str]) -> Layer:
    """``--set section.key=value`` flags."""
    layer = Layer("command line", {})
    for item in assignments:
        dotted, sep, raw = item.partition("=")
        section, dot, key = dotted.strip().partition(".")
        if not sep or not dot or not section or not key:
            raise ConfigError(
                f"--set {item!r}: expected SECTION.KEY=VALUE, "
                "for example --set memory.backend=sqlite"
            )
        layer.values.setdefault(section, {})[key] = _parse_scalar(raw)
        if key.strip() == "dsn":  # a connection string's password is never shown
            from llmos.memory.postgres import mask_dsn

            item = f"{dotted}={mask_dsn(raw)}"
        layer.origins[(section, key)] = f"--set {item}"
        layer.origins.setdefault((section,), f"--set {item}")
    return layer


class Config:
    """The validated configuration: core sections as attributes, plugin sections by name."""

    def __init__(self, sections: Mapping[str, BaseModel | type[BaseModel]],
                 origins: dict[tuple[str, ...], str],
                 files: list[dict[str, Any]] | None = None,
                 warnings: list[str] | None = None):
        # a model class stands for a section no layer sets: its defaults, made on first use
        self._sections: dict[str, BaseModel | type[BaseModel]] = dict(sections)
        self.origins = origins
        self.files = files or []  # [{"path", "exists"}], in precedence order (lowest first)
        self.warnings = warnings or []  # sections ignored because their plugin is not loaded

    def __getattr__(self, name: str) -> Any:
        if name not in self.__dict__.get("_sections", ()):
            raise AttributeError(name)
        return self.section(name)

    def section(self, name: str) -> Any:
        """A section's model instance, core or contributed by a plugin."""
        value = self._sections[name]
        if isinstance(value, type):
            value = self._sections[name] = value()
        return value

    def origin(self, *key: str) -> str:
        """Where a key's value came from ('defaults' when nobody set it): the file path,
        ``environment variable NAME`` or ``--set ...`` of the layer that set this very
        key; another key of the same section says nothing about this one."""
        return self.origins.get(key) or ("defaults" if len(key) > 1 else
                                         self.origins.get(key[:1], "defaults"))

    def as_dict(self) -> dict[str, Any]:
        return {name: self.section(name).model_dump(mode="json") for name in self._sections}


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _describe_allowed(model: type[BaseModel]) -> str:
    return ", ".join(sorted(model.model_fields))


def build_config(
    layers: list[Layer],
    sections: Mapping[str, type[BaseModel]],
    unavailable: Mapping[str, str] | None = None,
) -> Config:
    """Merge the layers in order and validate each section; raise ConfigError on problems.

    ``unavailable`` maps the sections of plugins that are known but not loaded (not
    installed, disabled, failed) to what to do about it: such a section is ignored with a
    warning (``Config.warnings``), so a missing plugin never breaks other commands. A
    section that matches nothing is a warning too (it may belong to a plugin this
    environment has never had), unless it is a near miss of a known section: then it is
    a typo that would silently drop settings, and an error ("did you mean").
    """
    merged: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    files: list[dict[str, Any]] = []
    for layer in layers:
        _merge(merged, layer.values)
        origins.update(layer.origins)
        if layer.path is not None:
            files.append({"path": str(layer.path), "exists": layer.exists})

    unavailable = unavailable or {}
    warnings: list[str] = []
    for name in sorted(set(merged) - set(sections)):
        src = origins.get((name,), "config")
        if name in unavailable:
            warnings.append(f"{src}: section [{name}] is ignored: {unavailable[name]}")
            continue
        import difflib

        known = sorted({*sections, *unavailable})
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            raise ConfigError(
                f"{src}: unknown section [{name}]; did you mean [{close[0]}]? "
                f"(known sections: {', '.join(known)})"
            )
        warnings.append(
            f"{src}: unknown section [{name}] is ignored: no installed plugin provides it; "
            "install the plugin it belongs to, or remove the section"
        )
    values: dict[str, BaseModel | type[BaseModel]] = {}
    for name, model in sections.items():
        if name not in merged and _defaults_valid(model):
            values[name] = model  # made from its defaults when first read (Config.section)
            continue
        raw = merged.get(name, {})
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{origins.get((name,), 'config')}: [{name}] must be a table of keys "
                f"({_describe_allowed(model)}), not {type(raw).__name__}"
            )
        try:
            values[name] = model.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, name, model, origins)) from None
    return Config(values, origins, files, warnings)


def _defaults_valid(model: type[BaseModel]) -> bool:
    """Whether ``model()`` is known to succeed without running it: a ``Section`` whose
    fields all have defaults, which pydantic does not validate (no ``validate_default``),
    with no model validator or post-init of its own that could refuse them."""
    if not issubclass(model, Section) or model.model_config.get("validate_default"):
        return False
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.root_validators:
        return False
    if getattr(model, "__pydantic_post_init__", None) is not None:
        return False
    return not any(info.is_required() or info.validate_default
                   for info in model.model_fields.values())


def _explain(
    exc: ValidationError, section: str, model: type[BaseModel], origins: dict[tuple[str, ...], str]
) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = f"{section}.{'.'.join(loc)}" if loc else section
        src = origins.get((section, loc[0]) if loc else (section,), "defaults")
        if err["type"] == "extra_forbidden":
            lines.append(
                f"{src}: unknown key {key}; allowed keys in [{section}]: {_describe_allowed(model)}"
            )
        else:
            given = err.get("input")
            lines.append(f"{src}: {key} = {given!r} is invalid: {err['msg']}")
    return "\n".join(lines)


def disabled_plugins(layers: list[Layer]) -> dict[str, str]:
    """The plugins ``plugins.disable`` names, each with where it was set, read from the
    layers before any plugin loads (the highest layer that sets the key wins, as for any
    key; a value that is not a list of names is left to the section's validation)."""
    for layer in reversed(layers):
        section = layer.values.get("plugins")
        if isinstance(section, Mapping) and "disable" in section:
            names = section["disable"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                return {}
            where = layer.origins.get(("plugins", "disable"), layer.name)
            return {name: f"plugins.disable ({where})" for name in names}
    return {}


def load_layers(workspace_root: Path, flags: list[str] | None, environ=None) -> list[Layer]:
    """The standard layers, in precedence order (lowest first)."""
    environ = os.environ if environ is None else environ
    layers: list[Layer] = []
    for path in (user_config_path(), workspace_root / "llmos.toml"):
        layer = read_toml_layer(path)
        layers.append(layer or Layer(str(path), {}, path=path, exists=False))
    layers.append(env_layer(environ))
    layers.append(flags_layer(flags or []))
    return layers
