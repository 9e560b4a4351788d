"""Labelled episodes for ``watchdog backtest``: the TOML file model and its strict loader.

An episodes file names periods of real history and what they were::

    lookback = "10bd"            # optional: how early an alert still counts as a warning
    calendar = "sifma"           # optional: the business days lead times are counted in

    [[episode]]
    name = "repo-spike-2019-09"  # unique, kebab-case
    start = 2019-09-16           # TOML dates (New York calendar days), inclusive
    end = 2019-09-20
    kind = "stress"              # stress | selected-date | calm
    split = "calibration"        # calibration | held-back
    lookback = "2bd"             # optional: this episode's own lookback
    description = "SOFR 2.43% -> 5.25% with IOER at 2.10%"

``watchdog backtest`` reads ``episodes/default.toml`` of the working directory by default; where
there is none (watchdog installed with pip, run from anywhere), the copy shipped in this package
(``default_episodes.toml``, 16 labelled periods of the shipped history) is read instead.

Loading collects every problem and raises one ``RuleError`` listing them as
``FILE:LINE: episode NAME: FIELD: message`` (``FILE:LINE: message`` where no episode applies),
like the rule loader: a mislabelled period would silently bend every score computed from it.
This module reads the file and does nothing else (no clock, no store).
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from watchdog.market.calendar import CALENDARS
from watchdog.model import tomlpos
from watchdog.model.errors import RuleError

Kind = Literal["stress", "selected-date", "calm"]
Split = Literal["calibration", "held-back"]
SPLITS = ("calibration", "held-back", "all")
DEFAULT_LOOKBACK = 10
_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_BUSINESS_DAYS = re.compile(r"^(\d+)bd$")
_TOP_KEYS = ("episode", "lookback", "calendar")
DEFAULT_PATH = "episodes/default.toml"      # the backtest default, relative to the working directory
PACKAGED = "default_episodes.toml"          # the same labels, shipped as package data


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("episode_field", "{msg}", {"msg": message})


def parse_lookback(text: str) -> int:
    """``"10bd"`` -> 10 (0 to 260 business days); ValueError otherwise."""
    match = _BUSINESS_DAYS.match(text.strip()) if isinstance(text, str) else None
    if not match or int(match.group(1)) > 260:
        raise ValueError(f"lookback must be business days such as '10bd' (0 to 260), got {text!r}")
    return int(match.group(1))


class Episode(BaseModel):
    """One labelled period. ``stress`` and ``selected-date`` episodes are to be caught; a
    ``calm`` one is to stay quiet (an alert starting in it is a false alarm)."""
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    start: date
    end: date
    kind: Kind
    split: Split
    description: str = ""
    # Business days before ``start`` an alert still counts (``"2bd"``); None = the file's.
    # Selected-date pressure is known from the calendar: an alert days ahead of a month-end
    # is about something else.
    lookback: int | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _KEBAB.match(value):
            raise _problem(f"{value!r} is not kebab-case (e.g. repo-spike-2019-09)")
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _toml_date(cls, value: Any) -> date:
        # A quoted "2019-09-16" is a string in TOML: refuse it rather than guess, so every file
        # says dates one way (and a datetime, with its time of day, is not a calendar day).
        if isinstance(value, date) and not hasattr(value, "hour"):
            return value
        hint = " (write it without quotes: start = 2019-09-16)" if isinstance(value, str) else ""
        raise _problem(f"must be a TOML date such as 2019-09-16, got {value!r}{hint}")

    @field_validator("lookback", mode="before")
    @classmethod
    def _lookback(cls, value: Any) -> int | None:
        if value is None:
            return None
        try:
            return parse_lookback(value)
        except ValueError as exc:
            raise _problem(str(exc)) from None

    @model_validator(mode="after")
    def _ordered(self) -> "Episode":
        if self.end < self.start:
            raise PydanticCustomError("episode_end", "{msg}", {"msg": f"end {self.end} is before start {self.start}"})
        return self

    @property
    def to_catch(self) -> bool:
        return self.kind != "calm"


class EpisodeSet(BaseModel):
    """The episodes of one file, with the file's lookback and calendar."""
    model_config = ConfigDict(frozen=True)

    episodes: tuple[Episode, ...] = ()
    lookback: int = DEFAULT_LOOKBACK
    calendar: str = "sifma"
    source: str = ""

    def select(self, split: str) -> "EpisodeSet":
        """Only the episodes of ``split`` (``calibration``, ``held-back`` or ``all``)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        kept = tuple(e for e in self.episodes if split == "all" or e.split == split)
        return self.model_copy(update={"episodes": kept})


def packaged_episodes() -> str:
    """The path of the episodes file shipped with watchdog (package data)."""
    return str(resources.files(__package__).joinpath(PACKAGED))


def resolve_episodes(path: str) -> str:
    """``path``; but the default ``episodes/default.toml``, where the working directory has no
    such file, is the copy shipped with watchdog."""
    if Path(path) == Path(DEFAULT_PATH) and not Path(path).exists():
        return packaged_episodes()
    return path


def load_episodes(path: str) -> EpisodeSet:
    """Read and validate an episodes file (``resolve_episodes``: the default falls back to the
    shipped copy); ``RuleError`` lists every problem with its line."""
    path = resolve_episodes(path)
    try:
        text = tomlpos.read_text(path)
    except tomlpos.TomlProblem as exc:
        raise RuleError(str(exc)) from None
    return parse_episodes(text, path)


def parse_episodes(text: str, filename: str = "<episodes>") -> EpisodeSet:
    """Validate the text of an episodes file (``filename`` is only used in messages)."""
    try:
        data = tomlpos.loads(text, filename, parse_float=Decimal)
    except tomlpos.TomlProblem as exc:
        raise RuleError(str(exc)) from None
    where = tomlpos.positions(text)
    problems: list[tuple[int, str]] = []
    settings = _settings(data, where, filename, problems)
    episodes = _episodes(data.get("episode", []), where, filename, problems)
    problems.extend(_cross_checks(episodes, where, filename))
    if not problems and not episodes:
        problems.append((1, f"{filename}:1: no [[episode]] tables: nothing to score"))
    if problems:
        problems.sort(key=lambda item: item[0])
        raise RuleError([message for _, message in problems])
    return EpisodeSet(episodes=tuple(e for e, _ in episodes), source=filename, **settings)


def _settings(data: dict, where: tomlpos.Positions, file: str,
              problems: list[tuple[int, str]]) -> dict[str, Any]:
    """The file-level keys: ``lookback`` and ``calendar``; anything else is refused."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        line = where.line_of((key,))
        if key not in _TOP_KEYS:
            problems.append((line, f"{file}:{line}: unknown table or key {key!r}; an episodes file "
                                   "holds lookback, calendar and [[episode]] tables"))
        elif key == "lookback":
            try:
                out["lookback"] = parse_lookback(value)
            except ValueError as exc:
                problems.append((line, f"{file}:{line}: lookback: {exc}"))
        elif key == "calendar" and value not in CALENDARS:
            problems.append((line, f"{file}:{line}: calendar: unknown calendar {value!r}; "
                                   f"known: {', '.join(CALENDARS)}"))
        elif key == "calendar":
            out["calendar"] = value
    return out


def _episodes(tables: Any, where: tomlpos.Positions, file: str,
              problems: list[tuple[int, str]]) -> list[tuple[Episode, int]]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        line = where.line_of(("episode",))
        problems.append((line, f"{file}:{line}: 'episode' must be written as [[episode]] tables"))
        return []
    out = []
    for index, table in enumerate(tables):
        name = _display_name(table.get("name"), index + 1)
        try:
            out.append((Episode.model_validate(table), where.line_of(("episode", index, "name"))))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = ("end",) if err["type"] == "episode_end" else tuple(err["loc"])
                line = where.line_of(("episode", index) + loc)
                problems.append((line, f"{file}:{line}: episode {name}: {_describe(err)}"))
    return out


def _cross_checks(episodes: list[tuple[Episode, int]], where: tomlpos.Positions,
                  file: str) -> list[tuple[int, str]]:
    """Names are unique, and no calm episode overlaps one to be caught: a day cannot be both
    quiet and stressed, and an alert on it would count as a catch and a false alarm at once."""
    problems, first = [], {}
    for episode, line in episodes:
        if episode.name in first:
            problems.append((line, f"{file}:{line}: episode {episode.name}: name: duplicate name "
                                   f"(first defined at line {first[episode.name]})"))
        else:
            first[episode.name] = line
    calm = [(e, line) for e, line in episodes if not e.to_catch]
    for episode, line in episodes:
        for quiet, quiet_line in calm:
            if episode.to_catch and episode.start <= quiet.end and quiet.start <= episode.end:
                problems.append((line, f"{file}:{line}: episode {episode.name}: start: overlaps the "
                                       f"calm episode {quiet.name} (line {quiet_line})"))
    return problems


def _display_name(raw: object, number: int) -> str:
    if isinstance(raw, str) and re.fullmatch(r"[\w.-]{1,80}", raw):
        return raw
    return repr(raw[:80]) if isinstance(raw, str) else f"#{number}"


def _describe(err: dict) -> str:
    """``field: message`` for one pydantic error, worded for the file's author."""
    field_name = tomlpos.dotted(err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = f"unknown field; known fields: {', '.join(sorted(Episode.model_fields))}"
    elif err["type"] == "missing":
        message = "required field is missing"
    elif err["type"] == "literal_error":
        message = f"must be one of {err['ctx']['expected']}, got {err['input']!r}"
    elif err["type"] == "episode_end":
        field_name = "end"      # a check of the whole table, reported where the end is written
    return f"{field_name}: {message}" if field_name else message


__all__ = ["DEFAULT_PATH", "Episode", "EpisodeSet", "SPLITS", "load_episodes", "packaged_episodes", "parse_episodes",
           "parse_lookback", "resolve_episodes"]
