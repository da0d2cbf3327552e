"""Join information from invitations as Teams, Zoom, Google Meet, Webex, GoTo and Jitsi
write them: the provider, the best link (ranked by where it was found, SafeLinks
unwrapped) and one-tap dial-in numbers with the PIN after pauses."""

from __future__ import annotations

import icalendar

from carcloud.calendars.joining import join_info, unwrap


def event(**properties: str) -> icalendar.Event:
    text = "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20261207T090000Z\r\n"
    for name, value in properties.items():
        text += f"{name.replace('_', '-')}:{value}\r\n"
    parsed = icalendar.Event.from_ical(text + "END:VEVENT\r\n")
    assert isinstance(parsed, icalendar.Event)
    return parsed


def esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


TEAMS = """________________________________________________________________________________
Microsoft Teams meeting
Join on your computer, mobile app or room device
Click here to join the meeting<https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Fteams.microsoft.com%2Fl%2Fmeetup-join%2F19%253ameeting_NzQ2%2540thread.v2%2F0%3Fcontext%3D%257b%2522Tid%2522%253a%2522abc%2522%257d&data=05%7C01%7C&reserved=0>
Meeting ID: 355 123 456 789
Passcode: aB3cD4
Or call in (audio only)
+49 30 123456,,123456789#<tel:+4930123456,,123456789#>   Germany, Berlin
Phone Conference ID: 123 456 789#
________________________________________________________________________________"""

ZOOM = """Ada is inviting you to a scheduled Zoom meeting.
Join Zoom Meeting
https://us02web.zoom.us/j/85512345678?pwd=aGVsbG8
Meeting ID: 855 1234 5678
Passcode: 424242
---
One tap mobile
+13017158592,,85512345678#,,,,*424242# US (Washington DC)
+13126266799,,85512345678#,,,,*424242# US (Chicago)
---
Dial by your location
• +1 301 715 8592 US (Washington DC)
Find your local number: https://us02web.zoom.us/u/kdEXAMPLE"""

MEET = """-::~:~::~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~::~:~::-
Join with Google Meet: https://meet.google.com/abc-defg-hij
Or dial: (DE) +49 30 300195061 PIN: 123 456 789#
More phone numbers: https://tel.meet/abc-defg-hij?pin=123456789
Learn more about Meet at: https://support.google.com/a/users/answer/9282720
-::~:~::~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~:~::~:~::-"""


def test_teams_through_safelinks_with_its_dial_in() -> None:
    info = join_info(event(SUMMARY="Review", DESCRIPTION=esc(TEAMS)))
    doc = info.document()
    assert doc is not None
    assert doc["provider"] == "teams" and doc["provider_name"] == "Microsoft Teams"
    assert doc["url"].startswith("https://teams.microsoft.com/l/meetup-join/19%3ameeting_NzQ2")
    assert "safelinks" not in doc["url"]
    assert doc["source"] == "description"
    assert [d["uri"] for d in doc["dial_in"]] == ["tel:+4930123456,,123456789#"]


def test_zoom_with_one_tap_numbers_and_its_plain_number() -> None:
    link = "https://us02web.zoom.us/j/85512345678?pwd=aGVsbG8"
    doc = join_info(event(DESCRIPTION=esc(ZOOM), LOCATION=link)).document()
    assert doc is not None
    assert (doc["provider"], doc["source"]) == ("zoom", "location")
    assert doc["url"] == "https://us02web.zoom.us/j/85512345678?pwd=aGVsbG8"
    # The find-your-number page is not a way into the meeting.
    assert [o["url"] for o in doc["options"]] == [doc["url"]]
    # The plain "+1 301 715 8592" with its meeting ID and passcode is the first one-tap number.
    assert [d["uri"] for d in doc["dial_in"]] == [
        "tel:+13017158592,,85512345678#,,,,*424242#",
        "tel:+13126266799,,85512345678#,,,,*424242#",
    ]


def test_google_meet_with_dial_in_and_pin_from_conference_data() -> None:
    meeting = event(
        DESCRIPTION=esc(MEET),
        X_GOOGLE_CONFERENCE="https://meet.google.com/abc-defg-hij",
        URL="https://calendar.google.com/calendar/event?eid=abc",
    )
    doc = join_info(meeting).document()
    assert doc is not None
    assert (doc["provider"], doc["source"]) == ("google_meet", "conference")
    assert doc["url"] == "https://meet.google.com/abc-defg-hij"
    assert doc["dial_in"] == [
        {"uri": "tel:+4930300195061,,123456789#", "number": "+49 30 300195061", "pin": "123456789"}
    ]


def test_self_hosted_jitsi_named_in_the_text_and_on_the_host() -> None:
    named = join_info(
        event(DESCRIPTION=esc("Join the Jitsi meeting: https://meet.example.org/TeamSync42"))
    )
    assert named.best is not None and (named.best.provider, named.best.url) == (
        "jitsi", "https://meet.example.org/TeamSync42",
    )  # fmt: skip
    on_host = join_info(event(LOCATION="https://jitsi.uni-example.de/Seminar-7"))
    assert on_host.best is not None and on_host.best.provider == "jitsi"
    public = join_info(event(LOCATION="https://meet.jit.si/OpenStandup"))
    assert public.best is not None and public.best.provider == "jitsi"
    # A plain web page in a description is no meeting.
    assert (
        join_info(event(DESCRIPTION="Agenda: https://wiki.example.org/Agenda")).document() is None
    )


def test_webex_gotomeeting_and_any_conference_uri() -> None:
    webex = join_info(event(LOCATION="https://acme.webex.com/meet/ada.l"))
    assert webex.best is not None and webex.best.provider == "webex"
    goto = join_info(event(DESCRIPTION="https://global.gotomeeting.com/join/123456789"))
    assert goto.best is not None and goto.best.provider == "gotomeeting"
    text = (
        "BEGIN:VEVENT\r\nUID:y\r\nDTSTART:20261207T090000Z\r\n"
        "CONFERENCE;VALUE=URI;FEATURE=VIDEO;LABEL=Room 7:https://video.example.net/r/7\r\n"
        "CONFERENCE;VALUE=URI;FEATURE=PHONE:tel:+1-412-555-0123,,,654321#\r\n"
        "LOCATION:https://zoom.us/j/111\r\nEND:VEVENT\r\n"
    )
    parsed = icalendar.Event.from_ical(text)
    assert isinstance(parsed, icalendar.Event)
    doc = join_info(parsed).document()
    assert doc is not None
    # Known provider in conference data would win; an unknown CONFERENCE URI still
    # outranks a known link found only in the location.
    assert (doc["provider"], doc["url"]) == ("other", "https://video.example.net/r/7")
    assert [o["provider"] for o in doc["options"]] == ["other", "zoom"]
    assert doc["dial_in"][0]["uri"] == "tel:+14125550123,,,654321#"


def test_nested_redirects_are_unwrapped() -> None:
    inner = "https%3A%2F%2Fmeet.google.com%2Fxyz-abcd-efg"
    google = f"https://www.google.com/url?q={inner}&sa=D"
    safe = "https://eur01.safelinks.protection.outlook.com/?url=" + google.replace(
        "%", "%25"
    ).replace("?", "%3F").replace("&", "%26").replace("=", "%3D")
    assert unwrap(safe) == "https://meet.google.com/xyz-abcd-efg"
