"""The config of a run, in one place: composed from conf/ and the command line, checked, resolved,
and its model named. The app, the sweep and the studies (studies/) all get their configs here.

Command-line overrides are checked before Hydra sees them, so a typo ends in one line that lists
the valid keys ("did you mean ...") instead of Hydra's multi-line "Could not override" message.

`check_override_keys` checks one combination of group choices (a single run). A sweep
(`-m method=kfac,npo method.lr=1e-3`) is checked by calling it once per combination of choices
(`sweep_combinations`), where a key may be valid for some choices only.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.buildcache import CONF_DIR
from core.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from omegaconf import DictConfig

GROUPS = ("method", "model", "suite", "attack", "sweep", "tracker")
_OVERRIDE = re.compile(r"([A-Za-z_][\w.]*)=(.*)")


def parse_overrides(argv: list[str], groups: tuple[str, ...] = GROUPS) -> tuple[dict[str, list[str]], list[str]]:
    """({group: [choices]}, [keys set by plain `key=value` overrides]) of a command line. Flags,
    `+key=` / `++key=` / `~key` overrides (which add or delete keys on purpose), `hydra.*` keys and
    `group/sub=choice` overrides are left out."""
    choices: dict[str, list[str]] = {}
    keys: list[str] = []
    for arg in argv:
        match = _OVERRIDE.fullmatch(arg)
        if not match:
            continue
        key, value = match.groups()
        if key in groups:
            choices[key] = value.split(",")
        elif key != "hydra" and not key.startswith("hydra."):
            keys.append(key)
    return choices, keys


def with_model_suite(argv: list[str]) -> list[str]:
    """`argv` plus `suite=<S>` when it chooses no suite and its one model names a `default_suite`
    in conf/model/<model>.yaml (a model that brings its own evaluation files: model=smollm2_planted
    runs suite=smollm2_planted unless told otherwise). Knowledge of the model stays in its config."""
    choices, _ = parse_overrides(argv)
    models = choices.get("model") or [_default_choice("model")]
    if "suite" in choices or len(models) != 1 or not (CONF_DIR / "model" / f"{models[0]}.yaml").is_file():
        return argv
    import yaml

    spec = yaml.safe_load((CONF_DIR / "model" / f"{models[0]}.yaml").read_text(encoding="utf-8")) or {}
    suite = spec.get("default_suite") if isinstance(spec, dict) else None
    return [*argv, f"suite={suite}"] if suite else argv


def _default_choice(group: str) -> str:
    """conf/config.yaml's choice for `group`."""
    import yaml

    defaults = yaml.safe_load((CONF_DIR / "config.yaml").read_text(encoding="utf-8"))["defaults"]
    return next(str(d[group]) for d in defaults if isinstance(d, dict) and group in d)


def sweep_combinations(choices: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of group choices a sweep runs (one for a single run)."""
    groups = list(choices)
    return [dict(zip(groups, combo)) for combo in itertools.product(*(choices[g] for g in groups))]


def check_override_keys(choices: dict[str, str], keys: list[str], config_name: str = "config",
                        config_dir: Path = CONF_DIR) -> None:
    """Compose the config for `choices` ({group: choice}) and raise ConfigError, in one line, for
    the first key in `keys` that it does not have, naming the valid keys beside it."""
    if not keys:
        return
    from hydra import compose, initialize_config_dir
    from omegaconf import DictConfig

    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose(config_name=config_name, overrides=[f"{g}={c}" for g, c in choices.items()])
    for key in keys:
        node, parts = cfg, key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, DictConfig):
                break  # below a leaf value (e.g. a list): Hydra's own check answers
            valid = [str(k) for k in node.keys()]
            if part not in valid:
                raise ConfigError(unknown_key_message(".".join(parts[:depth]), part, valid, cfg))
            node = node._get_node(part)  # the node itself: a ??? value is a key that exists


def unknown_key_message(parent: str, key: str, valid: list[str], cfg: object) -> str:
    """One line: which key is unknown where, the closest valid one, and all valid ones."""
    from omegaconf import OmegaConf

    full = f"{parent}.{key}" if parent else key
    hint = did_you_mean(key, valid)
    owner = parent.split(".")[0]
    if parent in GROUPS:  # name the chosen config: "method kfac has no setting 'rhoo'"
        chosen = OmegaConf.select(cfg, f"{parent}.name", default=None) or OmegaConf.select(
            cfg, f"{parent}.kind", default=None)
        what = f"{owner} {chosen}" if chosen else owner
        return f"{what} has no setting '{key}'{hint}; its settings: {', '.join(valid)}"
    where = f"under '{parent}'" if parent else "at the top level"
    return f"unknown config key '{full}'{hint}; valid keys {where}: {', '.join(valid)}"


# A method-only setting swept over several methods (`-m method=kfac,npo method.lr=1e-3`) would make
# Hydra fail while composing the first job whose method lacks the key ("Key 'lr' is not in struct"),
# after earlier jobs may already have run: check_method_keys composes each method choice up front.
# `method.lr=1e-3`, `method.overrides.3.gate=0.9`; `+method.x` (add) and `~method.x` (delete) say
# the user knows the key is absent or present, so they are left to Hydra.
_METHOD_KEY = re.compile(r"method\.([A-Za-z_]\w*)(?:\.[\w.]+)?=")


def method_keys(conf_dir: Path, method: str) -> set[str]:
    """The settings of method config `method` as composed (defaults lists included)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
            cfg = compose("config", overrides=[f"method={method}"])
        return set(cfg.method.keys())
    finally:
        GlobalHydra.instance().clear()


def check_method_keys(argv: list[str], conf_dir: Path, default_method: str = "none") -> None:
    """One line naming every method choice that lacks a `method.<key>=` setting on the command line."""
    keys = sorted({m.group(1) for arg in argv if (m := _METHOD_KEY.match(arg))})
    if not keys:
        return
    methods = parse_overrides(argv)[0].get("method") or [default_method]
    for key in keys:
        lacking = [m for m in methods if key not in method_keys(conf_dir, m)]
        if lacking:
            having = [m for m in methods if m not in lacking]
            also = f" (only {', '.join(having)} has it)" if having else ""
            raise ConfigError(f"method.{key} is not a setting of method {', '.join(lacking)}{also}; "
                              f"sweep it over methods that have it, or run those separately")


def group_options(group: str) -> list[str]:
    """Config names available in a group: ours and those of installed plugin packages."""
    from harness.help import group_files

    return list(group_files(group, CONF_DIR))


def open_task_settings(argv: list[str]) -> list[str]:
    """`suite.tasks.<task>.<key>=value` works as documented whether or not the suite's YAML lists
    the key (Hydra wants '+' for a new key): such overrides become '++' (add or override). A
    misspelt key still fails, in one line naming the task's valid settings (core.registry.instantiate)."""
    return ["++" + arg if re.match(r"suite\.tasks\.[\w-]+\.[\w.]+=", arg) else arg for arg in argv]


def check_group_choices(argv: list[str]) -> None:
    """Catch `method=kfc` (or an empty `method=`) before Hydra does, to answer in one line with a suggestion."""
    for arg in argv:
        match = re.fullmatch(r"(\w+)=(.*)", arg)
        if not match or match.group(1) not in GROUPS:
            continue
        group, value = match.groups()
        valid = group_options(group)
        for choice in value.split(","):  # multirun sweeps list choices with commas
            if not choice:
                raise ConfigError(f"{group}= names no {group}; valid: {', '.join(valid)}")
            if choice not in valid:
                raise ConfigError(f"unknown {group} '{choice}'{did_you_mean(choice, valid)}; valid: {', '.join(valid)}")


# Sections whose added (`+key=`) or deleted (`~key`) keys are checked by what reads them: a
# method's settings, a suite's tasks, the attacks. Anywhere else an added key is read by nothing
# (but would change the run's identity) and a deleted one is needed: both are refused.
OPEN_SECTIONS = ("method.", "suite.tasks.", "attack.attacks.")
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic"


def hydra_overrides(argv: list[str]) -> list[str]:
    """The overrides of a command line, less Hydra's flags (-m, --cfg job, ...) and their values."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()

    def refuse(message: str) -> None:  # argparse's usage text and exit, as one line
        late = [a for a in argv[next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv)):]
                if a.startswith("-")]
        where = f"; flags ({', '.join(late)}) go before the overrides" if late and "unrecognized" in message else ""
        raise ConfigError(f"{message}{where}; see python -m harness --help")

    parser.error = refuse  # type: ignore[method-assign]
    return list(parser.parse_args(argv).overrides)


def check_grammar(overrides: list[str]) -> list[Any]:
    """Hydra's parsed overrides; a syntax error (`method.rho=0.9)`) is one line naming the override."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = []
    for arg in overrides:
        try:
            parsed += parser.parse_overrides([arg])
        except HydraException as e:
            lines = [line.strip() for line in str(e).splitlines() if line.strip() and not line.startswith("See ")]
            reason = next((line for line in lines if not line.startswith("Error parsing override")), "syntax error")
            raise ConfigError(f"bad override '{arg}': {reason}; quote a value that holds brackets or "
                              f"parentheses (grammar: {GRAMMAR})") from None
    return parsed


def check_added_and_deleted(parsed: list[Any], choices: dict[str, str]) -> None:
    """`+foo=1` outside OPEN_SECTIONS must name a key the config has ('++' overrides it); `~seed`
    outside them is refused: the harness reads every such key."""
    added = []
    for override in parsed:
        key = str(override.key_or_group)
        if key == "hydra" or key.startswith(("hydra.", "hydra/")) or key.startswith(OPEN_SECTIONS):
            continue
        if override.is_delete():
            raise ConfigError(f"'~{key}' deletes a key the harness reads; deleting works only below "
                              f"{', '.join(OPEN_SECTIONS)} (e.g. ~suite.tasks.quotes); set {key}=<value> instead")
        if override.is_add() or override.is_force_add():
            added.append(key)
    try:
        check_override_keys(choices, added)
    except ConfigError as e:
        raise ConfigError(f"{e} ('+' adds a key only below {', '.join(OPEN_SECTIONS)})") from None


def compose_problem(overrides: list[str], choices: dict[str, str]) -> str | None:
    """Compose the config with Hydra's own settings as a run would, for what only Hydra can check
    (a `hydra/launcher=` choice, '+' on a key that exists, '~' on one that does not): its error
    as one line, or None."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            compose(config_name="config", overrides=[f"{g}={c}" for g, c in choices.items()] + overrides,
                    return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        listed = [i for i, line in enumerate(lines) if line.startswith("Available options")]
        if listed:  # "Could not find 'hydra/launcher/bogus'", then the options, then the search path
            options = itertools.takewhile(lambda line: not line.startswith("Config search path"), lines[listed[0] + 1:])
            return f"{lines[0]}; valid: {', '.join(options)}"
        return " ".join(lines[:3])
    return None


SWITCHES = ("debug", "hub")  # top-level keys that are true or false (read before the run checks its config)


def check_values(parsed: list[Any], multirun: bool) -> None:
    """A list of values (`method=kfac,npo`, `seed=0,1`) needs -m; a switch is true or false."""
    for override in parsed:
        key = str(override.key_or_group)
        if override.is_sweep_override() and not multirun:
            raise ConfigError(f"'{override.input_line}' lists several values: add -m (multirun) to run one job "
                              f"per value, or give one value")
        if key in SWITCHES and not override.is_delete() and not isinstance(override.value(), bool):
            raise ConfigError(f"{key} must be true or false, got {override.value()!r}")


MAX_SWEEP_CHECKS = 40  # method configurations composed and built before a multirun starts


def check_sweep_settings(parsed: list[Any]) -> None:
    """A multirun's method settings, before any job starts (each job would fail on its own, in
    its own line, after the others ran): the first job's config, and each other listed value of
    a `method=` or `method.*` override in turn, is composed and its method built; a bad setting
    is one line naming the job's override."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from methods.base import build_method

    def values(override: Any) -> list[str]:
        key = override.get_key_element()
        if not override.is_sweep_override():
            return [f"{key}={override.get_value_element_as_str()}" if not override.is_delete() else key]
        try:
            return [f"{key}={v}" for v in override.sweep_string_iterator()]
        except Exception:  # a glob or an open range: left to the jobs
            return []

    listed = [values(o) for o in parsed]
    if any(not v for v in listed):
        return
    first = [v[0] for v in listed]
    jobs = [first] + [first[:i] + [value] + first[i + 1:] for i, (o, v) in enumerate(zip(parsed, listed))
                      if str(o.key_or_group) == "method" or str(o.key_or_group).startswith("method.") for value in v[1:]]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        for job in jobs[:MAX_SWEEP_CHECKS]:
            try:
                method = OmegaConf.to_container(compose(config_name="config", overrides=job).method, resolve=True)
            except (HydraException, OmegaConfBaseException):
                return  # Hydra's own error, answered when it runs
            try:
                build_method(method)  # type: ignore[arg-type]
            except ConfigError as e:
                changed = " ".join(o for o in job if o.startswith("method"))
                raise ConfigError(f"{e} (the multirun job with {changed or 'its default method'}; no job was started)") from None


def check_dict_values(parsed: list[Any], choices: dict[str, str]) -> None:
    """A dict value (`method.fractions={foo:0.5}`) is merged into the config's dict, and Hydra
    refuses a key that dict lacks in several lines that suggest '+' (which fails too): one line
    naming the keys it has, and '++', which adds them."""
    from omegaconf import DictConfig, OmegaConf

    dicts = [p for p in parsed if not p.is_force_add() and not p.is_add() and not p.is_delete()
             and not p.is_sweep_override() and isinstance(p.value(), dict)]
    if not dicts:
        return
    cfg = compose_config("config", [f"{g}={c}" for g, c in choices.items()])
    for override in dicts:
        key = str(override.key_or_group)
        node = OmegaConf.select(cfg, key)
        if not isinstance(node, DictConfig):
            continue
        extra = [str(k) for k in override.value() if k not in node]
        if extra:
            raise ConfigError(f"{override.input_line}: {key} has no key {', '.join(repr(k) for k in extra)}"
                              f"{did_you_mean(extra[0], [str(k) for k in node])} (its keys: "
                              f"{', '.join(map(str, node)) or 'none yet'}); a dict value is merged into the "
                              f"config's: '++{override.input_line}' adds keys")


def check_command_line(argv: list[str]) -> None:
    """Grammar, group choices and override keys, checked before Hydra so that a typo is one line."""
    overrides = hydra_overrides(argv)
    parsed = check_grammar(overrides)
    check_group_choices(argv)
    choices, keys = parse_overrides(argv)
    first = sweep_combinations(choices)[0]
    if all(len(options) == 1 for options in choices.values()):
        check_override_keys(first, keys)
    else:  # a sweep: a method-only key must exist in every swept method, before any job starts
        check_method_keys(argv, CONF_DIR)
    check_added_and_deleted(parsed, first)
    multirun = bool({"-m", "--multirun"} & set(argv))
    check_values(parsed, multirun)
    if multirun:
        check_sweep_settings(parsed)
    # What only Hydra checks, composed for the first job: only when such overrides are there.
    check_dict_values(parsed, first)
    special = [o for o, p in zip(overrides, parsed) if "/" in str(p.key_or_group) or p.is_add() or p.is_delete()]
    if special and (problem := compose_problem(special, first)):
        raise ConfigError(problem)


def compose_config(config_name: str, overrides: list[str]) -> "DictConfig":
    """conf/<config_name>.yaml with `overrides` (as on the command line); an unknown group choice
    or an override Hydra cannot parse or apply is a one-line ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    check_group_choices(overrides)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            return compose(config_name=config_name, overrides=with_model_suite(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(f"bad override ({' '.join(overrides)}): {str(e).splitlines()[0]}") from None


def resolve_config(cfg: "DictConfig") -> dict[str, Any]:
    """The resolved config as plain data; a required value left at ??? is a one-line error."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"config value '{key}' is required or invalid: {str(e).splitlines()[0]}") from None


def named_config(cfg: "DictConfig") -> dict[str, Any]:
    """resolve_config, with the model named (models.model_name: what run files are filed under)."""
    from models import model_name

    config = resolve_config(cfg)
    config["model"]["name"] = model_name(config["model"])
    return config
