"""Seeded users whose attributes change over dated sessions, with their ground truth.

Pure data: no store. Each user has some attributes (location, employer, editor, ...) with values
from small lists. Session by session an attribute may change (sometimes back to an earlier
value: Pune → Berlin → Pune), be restated (a duplicate, sometimes spelt differently: "pune.",
"Location"), or get a late statement about an earlier time (``valid_from`` before the newest
statement of that attribute). Free-text facts and conversation turns that mention old values are
the distractors.

The ground truth is computed here, from the statements alone: an attribute's current value is
the value of its statement latest in valid time; its history is the statements in valid-time
order, consecutive equal values forming one period (one stored fact).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = [
    "ATTRIBUTES",
    "AttributeTruth",
    "Session",
    "Statement",
    "Turn",
    "UserData",
    "generate",
    "key",
]


@dataclass(frozen=True)
class Attribute:
    """One kind of attribute: its values and how people talk about it."""

    name: str
    values: tuple[str, ...]
    question: str  # the topic asked of ``context``; {p}: he/she, {pp}: his/her
    announce: str  # a turn stating a new value
    restate: str  # a turn restating the current one
    reminisce: str  # a turn mentioning an old value (the temptation)


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "location",
        ("Pune", "Berlin", "Amsterdam", "Lisbon", "Toronto", "Bangalore", "Austin", "Nairobi"),
        "where does {p} live now? location",
        "I moved to {v}.",
        "Still living in {v}, the weather is fine.",
        "I still miss the street food in {v}.",
    ),
    Attribute(
        "employer",
        ("Acme Robotics", "Globex", "Initech", "Umbrella Health", "Hooli", "Vandelay Imports"),
        "who does {p} work for these days? employer",
        "I started a new job at {v}.",
        "Things at {v} are busy as usual.",
        "Ran into some old colleagues from {v} yesterday.",
    ),
    Attribute(
        "role",
        (
            "backend engineer",
            "staff engineer",
            "engineering manager",
            "data scientist",
            "product manager",
            "site reliability engineer",
            "tech lead",
        ),
        "what is {pp} job title now? role",
        "I'm now working as a {v}.",
        "Being a {v} keeps me busy.",
        "Back when I was a {v} I did a lot more on-call.",
    ),
    Attribute(
        "favourite editor",
        ("VS Code", "Neovim", "Emacs", "IntelliJ IDEA", "Sublime Text", "Helix", "Zed"),
        "which editor does {p} prefer? favourite editor",
        "I've switched to {v} as my editor.",
        "{v} is still my editor of choice.",
        "I still have my old {v} config lying around.",
    ),
    Attribute(
        "team",
        ("Payments", "Search", "Platform", "Growth", "Data Infra", "Mobile", "Security"),
        "which team is {p} on? team",
        "I joined the {v} team.",
        "The {v} team shipped a lot this sprint.",
        "The {v} team asked me for help again, like in the old days.",
    ),
    Attribute(
        "manager",
        ("Priya Nair", "Tom Becker", "Ana Souza", "Kenji Ito", "Grace Okafor", "Lukas Meyer"),
        "who is {pp} manager? manager",
        "My manager is now {v}.",
        "Had my one-on-one with {v} today.",
        "Had coffee with {v}, who used to be my manager.",
    ),
    Attribute(
        "diet",
        ("vegetarian", "vegan", "pescatarian", "omnivore", "keto", "gluten-free"),
        "what diet does {p} follow? diet",
        "I've gone {v}.",
        "Still {v}, it suits me.",
        "I was {v} for a while, that was tough.",
    ),
    Attribute(
        "phone model",
        ("Pixel 8", "iPhone 15", "Galaxy S24", "Pixel 7a", "iPhone 13 mini", "Fairphone 5"),
        "what phone does {p} use? phone model",
        "I got a {v}.",
        "My {v} battery still lasts all day.",
        "Found my old {v} in a drawer.",
    ),
    Attribute(
        "programming language",
        ("Python", "Go", "Rust", "TypeScript", "Kotlin", "Java", "Elixir"),
        "which programming language does {p} mostly write? programming language",
        "I mostly write {v} now.",
        "Wrote a lot of {v} this week.",
        "Had to fix some old {v} code today.",
    ),
    Attribute(
        "timezone",
        ("CET", "IST", "EST", "PST", "SGT", "AEST", "BRT"),
        "what timezone is {p} in? timezone",
        "I'm on {v} time now.",
        "Remember my meetings are in {v}.",
        "My calendar still shows {v} for some meetings.",
    ),
)
_BY_NAME = {attr.name: attr for attr in ATTRIBUTES}

_PEOPLE = (
    ("sunil", "he"),
    ("asha", "she"),
    ("marta", "she"),
    ("kofi", "he"),
    ("yuki", "she"),
    ("lars", "he"),
    ("ines", "she"),
    ("omar", "he"),
    ("chen", "he"),
    ("rosa", "she"),
)

_DISTRACTORS = (
    "{u} prefers concise answers",
    "{u} is training for a half marathon",
    "{u} wants code reviews before lunch",
    "{u} dislikes meetings on Fridays",
    "{u} is learning to play the cello",
    "{u} keeps notes in plain text files",
    "{u} asked for weekly summaries of open incidents",
    "{u} has a cat called Miso",
)
# Free-text facts that mention an old value of an attribute (plain statements, not values).
_OLD_VALUE_DISTRACTORS = {
    "location": "{u} went back to {v} for a friend's wedding",
    "employer": "{u} still gets newsletters from {v}",
    "favourite editor": "{u} once wrote a plugin for {v}",
    "manager": "{u} recommended {v} as a mentor",
    "phone model": "{u} sold the old {v} online",
}
_ACKS = ("Noted.", "Got it, thanks.", "Thanks, I'll remember that.", "Understood.")

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def key(text: str) -> str:
    """The comparison key of a value or attribute: case, spaces and end punctuation ignored."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip(" .!;,")


@dataclass(frozen=True)
class Turn:
    """A conversation turn of a session."""

    role: str
    content: str
    dia_id: str


@dataclass(frozen=True)
class Statement:
    """A fact given to the store.

    ``kind`` is ``new`` (first value), ``change``, ``return`` (a change back to an earlier
    value), ``restate``, ``late`` (about an earlier time) or ``note`` (a free-text fact).
    """

    kind: str
    attribute: str | None  # canonical name, None for a free-text fact
    spelt: str | None  # the attribute as written in the statement
    value: str
    valid_from: datetime | None  # explicit valid time; None: the session's time
    at: datetime  # the valid time in effect (``valid_from`` or the session's)
    order: int  # ingestion order within the user
    sources: tuple[str, ...] = ()


@dataclass
class Session:
    name: str
    at: datetime
    turns: list[Turn] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)


@dataclass(frozen=True)
class AttributeTruth:
    """What the store should believe about one attribute of one user.

    Attributes:
        current: Key of the current value (latest statement in valid time).
        display: The current value as first written.
        superseded: Keys of every other value the attribute ever had (never current).
        periods: The history as (value key, start) periods, oldest first.
        earlier: Keys of the values of the periods before the current one, newest first,
            each once (what the current fact's ``superseded`` annotation should list).
        features: Which kinds of statement the attribute went through (``change``,
            ``late``, ...), and ``late splits a period`` (``... the current period``) when a
            late statement fell between two earlier-stated statements of one other value.
    """

    current: str
    display: str
    superseded: frozenset[str]
    periods: tuple[tuple[str, datetime], ...]
    earlier: tuple[str, ...]
    features: frozenset[str]


@dataclass
class UserData:
    user: str
    pronoun: str
    attributes: list[str]
    sessions: list[Session]

    def statements(self) -> list[Statement]:
        return [s for session in self.sessions for s in session.statements]

    def truth(self) -> dict[str, AttributeTruth]:
        """Per attribute: the ground truth, from the statements alone."""
        out: dict[str, AttributeTruth] = {}
        for name in self.attributes:
            said = sorted(
                (s for s in self.statements() if s.attribute == name),
                key=lambda s: (s.at, s.order),
            )
            if not said:
                continue
            periods: list[tuple[str, datetime]] = []
            for s in said:
                if not periods or periods[-1][0] != key(s.value):
                    periods.append((key(s.value), s.at))
            current = periods[-1][0]
            display = next(
                s.value for s in sorted(said, key=lambda s: s.order) if key(s.value) == current
            )
            earlier = tuple(dict.fromkeys(value for value, _ in reversed(periods[:-1])))
            features = {s.kind for s in said}
            for s in said:
                # A late statement landing between two statements of one other value, as
                # known when it arrived: it splits that value's period in two (the current
                # period when the later statement is part of it).
                if s.kind != "late":
                    continue
                known = [t for t in said if t.order < s.order]
                before = [t for t in known if t.at < s.at]
                after = [t for t in known if t.at > s.at]
                if not before or not after:
                    continue
                around = {key(before[-1].value), key(after[0].value)}
                if len(around) == 1 and key(s.value) not in around:
                    features.add("late splits a period")
                    if after[0].at >= periods[-1][1]:
                        features.add("late splits the current period")
            out[name] = AttributeTruth(
                current=current,
                display=display,
                superseded=frozenset(key(s.value) for s in said) - {current},
                periods=tuple(periods),
                earlier=earlier,
                features=frozenset(features),
            )
        return out

    def notes(self) -> set[str]:
        """Keys of the distinct free-text facts."""
        return {key(s.value) for s in self.statements() if s.attribute is None}


def _spelling(rng: random.Random, text: str) -> str:
    """The same text as people type it: other case, a full stop, doubled spaces."""
    return rng.choice(
        [
            text,
            text.lower(),
            text.title(),
            text.upper(),
            f"{text}.",
            text.replace(" ", "  "),
            f" {text} ",
        ]
    )


def _between(rng: random.Random, lo: datetime, hi: datetime, taken: set[datetime]) -> datetime:
    """A time strictly between ``lo`` and ``hi`` (whole minutes), not in ``taken``."""
    minutes = int((hi - lo).total_seconds() // 60)
    for _ in range(100):
        at = lo + timedelta(minutes=rng.randint(1, max(minutes - 1, 1)))
        if lo < at < hi and at not in taken:
            return at
    raise AssertionError(f"no free time between {lo} and {hi}")


def _user(rng: random.Random, n: int, sessions: int) -> UserData:
    first, pronoun = _PEOPLE[n % len(_PEOPLE)]
    user = f"{first}-{n:04d}"
    names = rng.sample([a.name for a in ATTRIBUTES], rng.randint(6, len(ATTRIBUTES)))
    # When each attribute is first mentioned: mostly in the first session.
    first_session = {
        name: 0 if rng.random() < 0.6 or sessions < 3 else rng.randint(1, sessions - 2)
        for name in names
    }
    start = T0 + timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 10))
    times = [start]
    for _ in range(sessions - 1):
        times.append(times[-1] + timedelta(days=rng.randint(3, 21), minutes=rng.randint(0, 600)))
    history: dict[str, list[Statement]] = {name: [] for name in names}  # in the order stated
    notes: list[str] = []
    data = UserData(user=user, pronoun=pronoun, attributes=names, sessions=[])
    order = 0

    def current(name: str) -> str:
        return max(history[name], key=lambda s: (s.at, s.order)).value

    for k, at in enumerate(times):
        session = Session(name=f"s{k + 1}", at=at)
        data.sessions.append(session)
        turns: list[Turn] = []

        def say(content: str, session: Session = session, turns: list[Turn] = turns) -> str:
            dia = f"{session.name}:{len(turns) + 1}"
            turns.append(Turn("user", content, dia))
            if rng.random() < 0.5:
                turns.append(
                    Turn("assistant", rng.choice(_ACKS), f"{session.name}:{len(turns) + 1}")
                )
            return dia

        def state(
            kind: str,
            name: str | None,
            value: str,
            valid_from: datetime | None,
            dia: str | None,
            spelt: str | None = None,
            session: Session = session,
        ) -> None:
            nonlocal order
            order += 1
            stmt = Statement(
                kind=kind,
                attribute=name,
                spelt=spelt if spelt is not None else name,
                value=value,
                valid_from=valid_from,
                at=valid_from or session.at,
                order=order,
                sources=(dia,) if dia else (),
            )
            session.statements.append(stmt)
            if name is not None:
                history[name].append(stmt)

        for name in names:
            attr = _BY_NAME[name]
            said = history[name]
            if first_session[name] > k:
                continue
            if not said:
                value = rng.choice(attr.values)
                state("new", name, value, None, say(attr.announce.format(v=value)))
                continue
            now = current(name)
            latest = max(s.at for s in said)
            taken = {s.at for s in said}
            r = rng.random()
            if r < 0.25:  # a change, sometimes back to an earlier value
                before = {key(s.value) for s in said} - {key(now)}
                olds = [v for v in attr.values if key(v) in before]
                if olds and rng.random() < 0.4:
                    kind, value = "return", rng.choice(olds)
                else:
                    kind = "change"
                    value = rng.choice([v for v in attr.values if key(v) != key(now)])
                # "I moved last week": sometimes an explicit time since the last statement.
                valid_from = _between(rng, latest, at, taken) if rng.random() < 0.3 else None
                state(kind, name, value, valid_from, say(attr.announce.format(v=value)))
            elif r < 0.5:  # restated, spelt as people type
                spelt = _spelling(rng, name) if rng.random() < 0.3 else name
                dia = say(attr.restate.format(v=now)) if rng.random() < 0.7 else None
                state("restate", name, _spelling(rng, now), None, dia, spelt)
            if k >= 1 and rng.random() < 0.15:  # late: about a time before the newest statement
                latest = max(s.at for s in said)
                taken = {s.at for s in said}
                earliest = min(s.at for s in said) - timedelta(days=60)
                when = _between(rng, earliest, latest, taken)
                ordered = sorted(said, key=lambda s: (s.at, s.order))
                held = [s for s in ordered if s.at < when]
                after = [s for s in ordered if s.at > when]
                r = rng.random()
                if held and r < 0.2:
                    value = held[-1].value  # what held then, said again
                elif after and r < 0.4:
                    value = after[0].value  # the next value, earlier than we knew
                else:
                    value = rng.choice(attr.values)
                month = when.strftime("%B %Y")
                dia = say(f"Oh, I forgot to say: back in {month} my {name} was {value}.")
                state("late", name, value, when, dia)
        # Temptations: turns (and sometimes a free-text fact) mentioning old values.
        olds = [
            (name, s.value)
            for name in names
            for s in history[name]
            if key(s.value) != key(current(name))
        ]
        for name, value in rng.sample(olds, min(len(olds), rng.randint(1, 3))):
            say(_BY_NAME[name].reminisce.format(v=value))
            if name in _OLD_VALUE_DISTRACTORS and rng.random() < 0.3:
                note = _OLD_VALUE_DISTRACTORS[name].format(u=first, v=value)
                notes.append(note)
                state("note", None, note, None, None)
        for _ in range(rng.randint(0, 2)):
            if notes and rng.random() < 0.4:
                state("note", None, _spelling(rng, rng.choice(notes)), None, None)
            else:
                note = rng.choice(_DISTRACTORS).format(u=first)
                notes.append(note)
                state("note", None, note, None, None)
        session.turns = turns
    return data


def generate(users: int = 200, sessions: int = 10, seed: int = 7) -> list[UserData]:
    """``users`` users, each over ``sessions`` dated sessions; the same seed, the same data
    (and a user's data does not depend on how many other users there are)."""
    if users < 1 or sessions < 1:
        raise ValueError("users and sessions must be at least 1")
    return [_user(random.Random(f"{seed}:{n}"), n, sessions) for n in range(users)]
