"""How to join a meeting: the provider, the best join link, and dial-in numbers.

Providers are data (`PROVIDERS`): a host suffix and, where the provider also serves
other pages, the path of a join link. A self-hosted Jitsi has no fixed host: a link
counts as Jitsi when its host names Jitsi, or when the text it was found in says
Jitsi and the link looks like a room (one path segment). Any RFC 7986 `CONFERENCE`
URI is a join option even from a provider not listed.

The best link is ranked by where it was found: conference data first (CONFERENCE,
Google's and Microsoft's conference properties), then the event's URL, then its
location, then its description; a known provider wins over an unknown conference
URI within the same rank. Outlook SafeLinks and Google redirect links are unwrapped
first, so the car opens the meeting, not a scanner.

Dial-in numbers become `tel:` URIs with the PIN after pauses (`,,`), the form a
phone dials in one tap: `tel:+4930123456,,123456789#`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import icalendar


@dataclass(frozen=True, slots=True)
class Provider:
    """A meeting service: its id, its name, its hosts and the path of its join links."""

    id: str
    label: str
    hosts: tuple[str, ...]
    join_path: re.Pattern[str] | None = None

    def matches(self, host: str, path: str) -> bool:
        """A join link of this provider."""
        on_host = any(host == h or host.endswith("." + h) for h in self.hosts)
        return on_host and (self.join_path is None or bool(self.join_path.search(path)))


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "teams",
        "Microsoft Teams",
        ("teams.microsoft.com", "teams.live.com", "teams.microsoft.us"),
        re.compile(r"^/(l/meetup-join/|meet/|l/meet/|_#/l/meetup-join/)"),
    ),
    Provider("zoom", "Zoom", ("zoom.us", "zoomgov.com"), re.compile(r"^/(j|my|w|s|wc)/")),
    Provider(
        "google_meet",
        "Google Meet",
        ("meet.google.com",),
        re.compile(r"^/([a-z]{3}-[a-z]{4}-[a-z]{3}|lookup/)"),
    ),
    Provider("webex", "Webex", ("webex.com",), re.compile(r"^/(meet|join|[^/]+/[jm]\.php|wbxmjs)")),
    Provider(
        "gotomeeting",
        "GoTo Meeting",
        ("gotomeeting.com", "gotomeet.me", "meet.goto.com"),
        re.compile(r"^/(join/)?[\w-]+"),
    ),
    Provider("jitsi", "Jitsi Meet", ("meet.jit.si", "8x8.vc"), re.compile(r"^/[^/?#]+")),
)
_JITSI = next(p for p in PROVIDERS if p.id == "jitsi")
_ROOM = re.compile(r"^/[\w.~%-]{3,}/?$")
_URL = re.compile(r"(?:https?|tel|sip|sips):[^\s<>\"'{}|\\^`\[\]]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}>'\""
# Where a join link can be, best first.
SOURCES = ("conference", "url", "location", "description")
_CONFERENCE_PROPERTIES = (
    "CONFERENCE",
    "X-GOOGLE-CONFERENCE",
    "X-MICROSOFT-SKYPETEAMSMEETINGURL",
    "X-MICROSOFT-ONLINEMEETINGEXTERNALLINK",
)


def unwrap(url: str) -> str:
    """The link a SafeLinks or Google redirect link stands for (nested ones too)."""
    for _ in range(3):
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        query = parse_qs(parts.query)
        if host.endswith("safelinks.protection.outlook.com") and "url" in query:
            url = query["url"][0]
        elif host in ("www.google.com", "google.com") and parts.path == "/url" and "q" in query:
            url = query["q"][0]
        else:
            break
    return url


def provider_of(url: str, context: str = "") -> Provider | None:
    """The provider of a join link; `context` is the text it was found in (for Jitsi)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host, path = (parts.hostname or "").lower(), parts.path or "/"
    for provider in PROVIDERS:
        if provider.matches(host, path):
            return provider
    self_hosted = "jitsi" in host or "jitsi" in context.lower()
    if self_hosted and _ROOM.match(path):
        return _JITSI
    return None


@dataclass(frozen=True, slots=True)
class JoinOption:
    """One way into the meeting: a link, the provider it belongs to, where it was found."""

    url: str
    provider: str
    source: str

    def document(self) -> dict[str, str]:
        """The JSON form."""
        return {"url": self.url, "provider": self.provider, "source": self.source}


@dataclass(frozen=True, slots=True)
class DialIn:
    """A dial-in number and its PIN, and the one-tap `tel:` URI of both."""

    uri: str
    number: str
    pin: str | None

    def document(self) -> dict[str, str | None]:
        """The JSON form."""
        return {"uri": self.uri, "number": self.number, "pin": self.pin}


@dataclass(frozen=True, slots=True)
class JoinInfo:
    """Everything the car needs to join: the best option first, then the others."""

    options: tuple[JoinOption, ...] = ()
    dial_in: tuple[DialIn, ...] = ()

    @property
    def best(self) -> JoinOption | None:
        """The link to open."""
        return self.options[0] if self.options else None

    def document(self) -> dict[str, Any] | None:
        """The JSON form (None when there is no way to join)."""
        if not self.options and not self.dial_in:
            return None
        best = self.best
        label = next((p.label for p in PROVIDERS if best and p.id == best.provider), None)
        return {
            "provider": best.provider if best else ("phone" if self.dial_in else None),
            "provider_name": label,
            "url": best.url if best else None,
            "source": best.source if best else None,
            "options": [option.document() for option in self.options],
            "dial_in": [number.document() for number in self.dial_in],
        }


def _links(text: str) -> list[str]:
    return [unwrap(match.rstrip(_TRAILING)) for match in _URL.findall(text)]


def _texts(event: icalendar.Event, name: str) -> list[str]:
    value = event.get(name)
    values = value if isinstance(value, list) else [value]
    return [str(v) for v in values if v is not None]


def _candidates(event: icalendar.Event) -> list[tuple[str, str, str, str]]:
    """(source, link, the text it was in, label) in rank order."""
    found: list[tuple[str, str, str, str]] = []
    for name in _CONFERENCE_PROPERTIES:
        raw = event.get(name)
        for value in raw if isinstance(raw, list) else [raw]:
            if value is None:
                continue
            label = str(getattr(value, "params", {}).get("LABEL", ""))
            for link in _links(str(value)):
                found.append(("conference", link, label, label))
    for source, names in (
        ("url", ("URL",)),
        ("location", ("LOCATION",)),
        ("description", ("DESCRIPTION", "X-ALT-DESC")),
    ):
        for name in names:
            for text in _texts(event, name):
                for link in _links(text):
                    found.append((source, link, text, ""))
    return found


def join_info(event: icalendar.Event) -> JoinInfo:
    """The join options and dial-in numbers of an event, best first."""
    options: list[tuple[int, int, JoinOption]] = []
    seen: set[str] = set()
    tel_links: list[str] = []
    for order, (source, link, context, _label) in enumerate(_candidates(event)):
        if link.lower().startswith("tel:"):
            tel_links.append(link)
            continue
        provider = provider_of(link, context)
        known = provider is not None
        if not known and source != "conference":
            continue  # an ordinary link in the text is not a way into the meeting
        key = link.rstrip("/")
        if key in seen:
            continue
        seen.add(key)
        option = JoinOption(link, provider.id if provider else "other", source)
        options.append((SOURCES.index(source) * 2 + (0 if known else 1), order, option))
    options.sort(key=lambda entry: (entry[0], entry[1]))
    text = "\n".join(_texts(event, "DESCRIPTION") + _texts(event, "LOCATION"))
    return JoinInfo(tuple(o for _, _, o in options), dial_in(text, tel_links))


# ---- dial-in ----------------------------------------------------------------------------

_NUMBER = r"\+\d[\d ().\-\u00a0]{5,}\d"
_ONE_TAP = re.compile(rf"({_NUMBER})((?:,+[\d*#]+)+)")
_PLAIN = re.compile(_NUMBER)
_PIN = re.compile(
    r"(?:PIN|Phone Conference ID|Conference ID|Meeting ID|Access code|Zugriffscode|"
    r"Konferenz-ID|Besprechungs-ID)\s*[:#]?\s*(\d[\d ]{2,}\d|\d{3,})\s*#?",
    re.IGNORECASE,
)
_PASSCODE = re.compile(r"(?:Passcode|Kenncode)\s*:\s*(\d{3,})", re.IGNORECASE)
MAX_NUMBERS = 10


def _digits(number: str) -> str:
    return "+" + re.sub(r"\D", "", number)


def dial_in(text: str, tel_links: Sequence[str] = ()) -> tuple[DialIn, ...]:
    """Dial-in numbers in a meeting's text (and its tel: conference URIs), as tel: URIs."""
    found: dict[str, DialIn] = {}

    def add(uri: str, number: str, pin: str | None) -> None:
        if uri not in found and len(found) < MAX_NUMBERS:
            found[uri] = DialIn(uri, number, pin)

    for link in tel_links:
        body = link[4:].split(";", 1)[0]
        number, _, pauses = body.partition(",")
        pin = re.sub(r"[^\d]", "", pauses.split(",")[-1]) if pauses else None
        add(f"tel:{_digits(number)}{',' + pauses if pauses else ''}", number, pin or None)
    taken: list[tuple[int, int]] = []
    for match in _ONE_TAP.finditer(text):
        number, pauses = match.group(1), match.group(2)
        pin = next((part for part in pauses.split(",") if part), "").rstrip("#") or None
        add(f"tel:{_digits(number)}{pauses}", number.strip(), pin)
        taken.append(match.span())
    pin_match = _PIN.search(text)
    pin = re.sub(r"\D", "", pin_match.group(1)) if pin_match else None
    passcode_match = _PASSCODE.search(text)
    for match in _PLAIN.finditer(text):
        if any(start <= match.start() < end for start, end in taken):
            continue
        number = match.group(0).strip()
        if len(re.sub(r"\D", "", number)) < 7:
            continue
        pauses = f",,{pin}#" if pin else ""
        if pin and passcode_match and "zoom" in text.lower():
            pauses += f",,,,*{passcode_match.group(1)}#"
        add(f"tel:{_digits(number)}{pauses}", number, pin)
    return tuple(found.values())
