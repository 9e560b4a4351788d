"""Who gave a speech: a speaker line as a source or an archive wrote it, reduced to the person's
name, with the job title kept apart.

Sources write speaker lines many ways: "Governor Jerome H. Powell" (a Board page), "John C.
Williams, President and Chief Executive Officer" (a New York Fed page), "Speech by President Lorie
K. Logan" (a Dallas Fed page), and the Board archive's scraper cut "Vice Chairman for Supervision
Randal K. Quarles" after its first two words, leaving "For Supervision Randal K. Quarles" as the
speaker and "Vice Chairman" as the position. ``normalise_speaker`` gives the name ("Randal K.
Quarles") and the whole title ("Vice Chairman for Supervision"), so one person has one name
whatever the source.

Pure and total (standard library only, never raises): the sources apply it when they record a
speech, and keyword rules and alert summaries apply it when they read one, so a log recorded
before it existed reads the same as one recorded after. ``name_tokens`` is what speaker filters
compare (keyword rules' ``speakers``, a Reserve Bank source's ``*_speakers``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Words of a job title that a speaker line may carry before the name ("Vice Chair for
# Supervision", "Chair of the Financial Stability Board", "President and Chief Executive
# Officer"). No official's given name is one of them; a line made only of them is left alone.
_TITLE_WORDS = frozenset((
    "vice", "chair", "chairman", "chairwoman", "for", "supervision", "and", "of", "the",
    "financial", "stability", "board", "governor", "governors", "president", "chief",
    "executive", "officer", "first", "senior", "pro", "tempore", "member", "manager",
    "system", "open", "market", "account", "director",
))
# What a page puts before the speaker line ("Speech by President Lorie K. Logan").
_LEAD_INS = ("speech by ", "remarks by ", "statement by ", "testimony by ", "by ")
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
# A title's lower-case words when they do not open it ("Vice Chair For Supervision" -> "for").
_SMALL_WORDS = frozenset({"for", "and", "of", "the"})
_CONNECTORS = ("for ", "and ", "of ")     # a title fragment that continues the position
_NO_TITLE = frozenset({"", "unknown", "n/a", "none"})

_NAME_PART = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")


@dataclass(frozen=True, slots=True)
class Speaker:
    """``name``: the person ("Randal K. Quarles"); ``title``: their job title as far as the
    line and the position say it ("Vice Chairman for Supervision"), else ""."""
    name: str
    title: str = ""


def normalise_speaker(line: str, position: str = "") -> Speaker:
    """The person's name and title in ``line`` (a speaker line as written), completed by
    ``position`` (a separate job title, as archives and feeds give one).

    "For Supervision Randal K. Quarles", "Vice Chairman" -> ("Randal K. Quarles", "Vice Chairman
    for Supervision"); "John C. Williams, President and Chief Executive Officer" -> ("John C.
    Williams", "President and Chief Executive Officer"); "Roger W. Ferguson, Jr." keeps its
    suffix; a name alone is returned as it is."""
    line = " ".join(str(line or "").split())
    position = " ".join(str(position or "").split())
    if position.lower() in _NO_TITLE:
        position = ""
    name, after = _cut_appointment(line)
    name = _without_lead_in(name)
    words = name.split(" ") if name else []
    lead = 0
    while lead < len(words) and words[lead].lower().strip(",.") in _TITLE_WORDS:
        lead += 1
    if lead == len(words):                  # nothing but title words: no name to tell apart
        return Speaker(name, _title_case(position or after))
    prefix = " ".join(words[:lead])
    return Speaker(" ".join(words[lead:]), _title_case(_title(position, prefix, after)))


def name_tokens(name: str) -> tuple[str, ...]:
    """Lower-case name words without initials and suffixes, as speaker filters compare them:
    "Roger W. Ferguson, Jr." -> ("roger", "ferguson")."""
    parts = [p for p in _NAME_PART.findall(name.lower()) if len(p) > 1]
    while parts and parts[-1] in _SUFFIXES:
        parts.pop()
    return tuple(parts)


def speaker_matches(name: str, entries: tuple[tuple[str, ...], ...]) -> bool:
    """Whether the person called ``name`` is one of ``entries`` (each ``name_tokens`` of a
    surname or a full name): an entry matches the end of the name, so "Quarles" and "Randal
    Quarles" both match "Randal K. Quarles"."""
    tokens = name_tokens(normalise_speaker(name).name)
    return any(entry and tokens[len(tokens) - len(entry):] == entry for entry in entries)


def _cut_appointment(line: str) -> tuple[str, str]:
    """("John C. Williams", "President and Chief Executive Officer") from the line with a comma;
    a suffix after the comma ("Jr.") stays with the name."""
    parts = [part.strip() for part in line.split(",")]
    name = parts[0]
    rest = parts[1:]
    while rest and rest[0].lower().rstrip(".") in _SUFFIXES:
        name += ", " + rest.pop(0)
    return name, ", ".join(part for part in rest if part)


def _without_lead_in(name: str) -> str:
    lowered = name.lower()
    for lead_in in _LEAD_INS:
        if lowered.startswith(lead_in) and len(name) > len(lead_in):
            return name[len(lead_in):].strip()
    return name


def _title(position: str, prefix: str, after: str) -> str:
    """The title the line and the position say together: a fragment that continues the
    position ("for Supervision" after "Vice Chairman") is appended; otherwise the position
    wins, then the words before the name, then the appointment after a comma."""
    if position and prefix:
        if prefix.lower().startswith(_CONNECTORS):
            return f"{position} {prefix}"
        if prefix.lower() in position.lower():
            return position
        if position.lower() in prefix.lower():
            return prefix
        return position
    return position or prefix or after


def _title_case(title: str) -> str:
    """"Vice Chair For Supervision" -> "Vice Chair for Supervision": the archives capitalise
    every word, the Board's pages do not."""
    words = title.split(" ")
    return " ".join(word.lower() if index and word.lower() in _SMALL_WORDS else word
                    for index, word in enumerate(words))
