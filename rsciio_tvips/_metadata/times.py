"""Turn HyperSpy's ``General.date``/``time``/``time_zone`` into unix time.

TVIPS frame headers hold UTC unix seconds plus milliseconds. HyperSpy keeps a
local date and time and the name of their time zone, which may be an IANA
name (``Europe/Berlin``), an abbreviation (``CET``, ``PST``), an offset
(``+01:00``, ``UTC-5``) or ``UTC``; times may have fractional seconds.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..exceptions import warn

#: Common abbreviations, as offsets from UTC in hours. Daylight-saving names
#: (CEST, EDT ...) mean their summer offset.
ABBREVIATIONS = {
    "UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0, "WEST": 1, "BST": 1,
    "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "EET": 2, "EEST": 3, "MSK": 3,
    "IST": 5.5, "CST": -6, "CDT": -5, "EST": -5, "EDT": -4, "MST": -7,
    "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10,
    "JST": 9, "KST": 9, "AEST": 10, "AEDT": 11, "ACST": 9.5, "AWST": 8,
    "NZST": 12, "NZDT": 13, "SGT": 8, "HKT": 8,
}  # fmt: skip
#: Abbreviations that name more than one zone: the offset above is a guess.
AMBIGUOUS = {
    "CST": "China (+8)",
    "IST": "Ireland (+1) or Israel (+2)",
    "BST": "Bangladesh (+6)",
}
#: Windows time-zone names (what ``tzname()`` gives on Windows) and their
#: IANA zones, for the zones microscopes are most often in.
WINDOWS_ZONES = {
    "coordinated universal time": "UTC", "utc": "UTC",
    "gmt standard time": "Europe/London", "greenwich standard time": "UTC",
    "w. europe standard time": "Europe/Berlin",
    "w. europe daylight time": "Europe/Berlin",
    "central europe standard time": "Europe/Budapest",
    "central european standard time": "Europe/Warsaw",
    "romance standard time": "Europe/Paris",
    "romance daylight time": "Europe/Paris",
    "e. europe standard time": "Europe/Chisinau",
    "fle standard time": "Europe/Helsinki", "gtb standard time": "Europe/Athens",
    "russian standard time": "Europe/Moscow",
    "eastern standard time": "America/New_York",
    "eastern daylight time": "America/New_York",
    "central standard time": "America/Chicago",
    "central daylight time": "America/Chicago",
    "mountain standard time": "America/Denver",
    "pacific standard time": "America/Los_Angeles",
    "pacific daylight time": "America/Los_Angeles",
    "tokyo standard time": "Asia/Tokyo", "korea standard time": "Asia/Seoul",
    "china standard time": "Asia/Shanghai", "india standard time": "Asia/Kolkata",
    "singapore standard time": "Asia/Singapore",
    "aus eastern standard time": "Australia/Sydney",
}  # fmt: skip
_OFFSET = re.compile(
    r"^(?:UTC|GMT)?\s*(?P<sign>[+-])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?$", re.I
)


def parse_time_zone(name: str):
    """Return a ``tzinfo`` for a time-zone name, abbreviation or offset.

    Raises
    ------
    ValueError
        If the name is none of these.
    """
    text = str(name).strip()
    if text.lower() in WINDOWS_ZONES:
        return ZoneInfo(WINDOWS_ZONES[text.lower()])
    if text.upper() in ABBREVIATIONS:
        if text.upper() in AMBIGUOUS:
            warn(
                f"time zone {text!r} also names {AMBIGUOUS[text.upper()]}; it is "
                f"taken as UTC{ABBREVIATIONS[text.upper()]:+g}: give an IANA name "
                "(Europe/Berlin) or an offset to be sure",
                UserWarning,
            )
        return timezone(timedelta(hours=ABBREVIATIONS[text.upper()]))
    match = _OFFSET.match(text)
    if match:
        sign = -1 if match["sign"] == "-" else 1
        minutes = int(match["h"]) * 60 + int(match["m"] or 0)
        return timezone(sign * timedelta(minutes=minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = (
            f"time zone {name!r} is not an IANA name (Europe/Berlin), a known "
            "abbreviation (CET) or an offset (+01:00)"
        )
        raise ValueError(msg) from exc


def unix_ms(date_text, time_text, zone="UTC") -> int:
    """Return the UTC unix time, in whole milliseconds, of a local date and time.

    Parameters
    ----------
    date_text : str
        ISO date, ``YYYY-MM-DD``.
    time_text : str
        ISO time, ``HH:MM:SS`` with optional fractional seconds.
    zone : str, optional
        Time zone of the date and time.

    Returns
    -------
    int
        Milliseconds since 1970-01-01 00:00 UTC, rounded to the nearest.

    Raises
    ------
    ValueError
        If the date, the time or the zone cannot be read, or the moment is
        before 1970 or after 2106 (a uint32 of seconds).
    """
    try:
        moment = datetime.combine(
            date.fromisoformat(str(date_text)), time.fromisoformat(str(time_text))
        )
    except ValueError as exc:
        msg = f"cannot read the date {date_text!r} and time {time_text!r}: {exc}"
        raise ValueError(msg) from exc
    zone_info = parse_time_zone(zone)
    moment = moment.replace(tzinfo=zone_info)
    if isinstance(zone_info, ZoneInfo):
        # at a change of daylight-saving time a local time can happen twice
        # (autumn) or not at all (spring): say which one is taken
        other = moment.replace(fold=1 - moment.fold)
        if other.utcoffset() != moment.utcoffset():
            warn(
                f"{date_text} {time_text} is ambiguous or does not exist in "
                f"{zone} (a change of daylight-saving time); it is taken as "
                f"UTC{moment.utcoffset().total_seconds() / 3600:+g}",
                UserWarning,
            )
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    # whole microseconds, rounded half up to milliseconds
    ms = (delta // timedelta(microseconds=1) + 500) // 1000
    if not 0 <= ms < 2**32 * 1000:
        msg = f"{date_text} {time_text} {zone} cannot be stored as uint32 unix seconds"
        raise ValueError(msg)
    return ms
