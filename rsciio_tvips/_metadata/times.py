"""Turn HyperSpy's ``General.date``/``time``/``time_zone`` into unix time.

TVIPS frame headers hold UTC unix seconds plus milliseconds. HyperSpy keeps a
local date and time and the name of their time zone, which may be an IANA
name (``Europe/Berlin``), an abbreviation (``CET``, ``PST``), a Windows name
(``W. Europe Standard Time``), an offset (``+01:00``, ``UTC-5``), a POSIX TZ
string (``EST5EDT,M3.2.0,M11.1.0``) or ``UTC``; times may have fractional
seconds.

A name is read as RosettaSciIO reads it (``rsciio.utils._date_time``), so the
same metadata means the same instant in both: whatever ``dateutil.tz.gettz``
knows comes first, with the rules that zone had on that date (``CET`` on a June
day is UTC+2, ``EST`` is always UTC-5). Only names gettz does not know go to
this module's own tables, see :func:`parse_time_zone`.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import tz

from ..exceptions import warn

#: Common abbreviations, as offsets from UTC in hours, for those gettz does
#: not know (PST, CEST, JST ...). Daylight-saving names (CEST, EDT ...) mean
#: their summer offset. The names gettz knows (CET, EET, WET, MET, EST, MST,
#: HST, UTC, GMT) are looked up there first in any spelling, with their
#: daylight-saving rules: their entry here is used only where no zone
#: database holds them.
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
#: IANA zones, for the zones microscopes are most often in. Used where gettz
#: does not know them (everywhere but on Windows, where gettz reads them from
#: the registry).
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
#: A UTC offset with an optional ``UTC``/``GMT`` in front, read as ISO 8601
#: does: ``UTC-5`` and ``-05:00`` are both five hours behind UTC.
_OFFSET = re.compile(
    r"^(?:UTC|GMT)?\s*(?P<sign>[+-])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?$", re.I
)
#: A POSIX TZ string (``EST5EDT,M3.2.0,M11.1.0``, ``UTC-5``), and the
#: ``hhmm`` offsets dateutil also takes. gettz hands any name with a digit to
#: ``tzstr``, which half-reads what is not one (``UTC+1.5`` gives UTC+1 in
#: winter and UTC-5 in summer): gettz's reading of such strings is not taken.
_TZ_NAME = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)"
_TZ_OFFSET = r"[+-]?(?:\d{4}|\d{1,2}(?::\d{2}){0,2})"
_TZ_RULE = r"(?:J\d{1,3}|\d{1,3}|M\d{1,2}\.\d\.\d)(?:/[+-]?\d{1,3}(?::\d{2}){0,2})?"
_POSIX_TZ = re.compile(
    rf"^{_TZ_NAME}{_TZ_OFFSET}"
    rf"(?:{_TZ_NAME}(?:{_TZ_OFFSET})?(?:,{_TZ_RULE},{_TZ_RULE})?)?$"
)
#: What gettz gives for a name that is only the host's own zone (a name in
#: ``time.tzname`` that no zone file holds, ``localtime``): its rules would
#: depend on the computer that writes the file, so such a name is read here
#: as if gettz did not know it.
_HOST_ZONES = (tz.tzlocal,) + ((tz.tzwinlocal,) if tz.tzwinlocal else ())
_HOST_NAMES = {"localtime"}


def _offset_zone(hours=0.0, minutes=0, name=None):
    """Return a fixed-offset zone, refusing offsets of a day or more."""
    try:
        return timezone(timedelta(hours=hours, minutes=minutes))
    except ValueError as exc:
        msg = f"time zone {name!r} is a day or more from UTC"
        raise ValueError(msg) from exc


def _known_to_gettz(name):
    """Return ``dateutil.tz.gettz(name)`` where it names the same zone on any host.

    Returns
    -------
    tzinfo or None
        None for the host's own zone (``tzlocal()``, ``localtime``, a file
        path) and for digits gettz would half-read; otherwise gettz's zone,
        as RosettaSciIO uses it.
    """
    bare = name.removeprefix(":")  # gettz drops a leading colon, as POSIX does
    if not bare or bare.lower() in _HOST_NAMES or os.path.isabs(bare):
        return None
    zone = tz.gettz(name)
    if zone is None or isinstance(zone, _HOST_ZONES):
        return None
    if isinstance(zone, tz.tzstr) and not _POSIX_TZ.match(bare):
        return None
    return zone


def _iana_zone(name):
    """Return the IANA zone ``name``, from gettz as RosettaSciIO would."""
    zone = _known_to_gettz(name)
    # zoneinfo may be the only database (a dateutil without its zone files)
    return zone if zone is not None else ZoneInfo(name)


def parse_time_zone(name: str):
    """Return a ``tzinfo`` for a time-zone name, abbreviation or offset.

    The first of these that knows the name gives its zone:

    1. ``dateutil.tz.gettz``, as RosettaSciIO uses it: IANA names, the
       abbreviations that are zone files (``CET``, ``EET``, ``WET``, ``MET``,
       ``EST``, ``MST``, ``HST``, ``UTC``, ``GMT``), Windows names on Windows
       and POSIX TZ strings (``EST5EDT,M3.2.0,M11.1.0``; ``UTC+1``/``GMT+1``
       mean east of Greenwich, other names POSIX's west: ``EST5`` is
       UTC-5). Not where gettz would give the host's own zone, a name in
       ``time.tzname`` with no zone file (``PST`` on a computer in
       California): that name goes on to the steps below, so that the file
       does not depend on the computer that writes it.
    2. Windows names (``W. Europe Standard Time``), any case, as their IANA
       zone.
    3. Abbreviations, any case: those gettz knows in capitals as gettz's
       zone (``cet`` is ``CET``), the others (``PST``, ``CEST``, ``JST``) as
       the fixed offset in :data:`ABBREVIATIONS`; those of several zones
       (:data:`AMBIGUOUS`) warn.
    4. Offsets: ``+01:00``, ``-5``, ``+0530``, ``UTC-5``.
    5. IANA names zoneinfo has and gettz has not.

    Parameters
    ----------
    name : str
        The time zone, as in ``General.time_zone``; spaces around it are
        ignored.

    Returns
    -------
    datetime.tzinfo
        The zone, with its daylight-saving rules where it has them.

    Raises
    ------
    ValueError
        If the name is none of these, is a day or more from UTC, or is the
        zone of the computer (empty, ``localtime``, a file path).

    Warns
    -----
    UserWarning
        If an abbreviation names several zones (``CST``), or a lower-case
        ``utc+1`` is a POSIX TZ string (UTC-1 to gettz) that an ISO reading
        would put on the other side of UTC.
    """
    text = str(name).strip()
    bare = text.removeprefix(":")  # gettz drops a leading colon, as POSIX does
    if not bare or bare.lower() in _HOST_NAMES or os.path.isabs(bare):
        # gettz and zoneinfo would give the zone of the computer that writes
        what = "is empty" if not bare else "names the zone of the computer"
        msg = (
            f"time zone {name!r} {what}: give an IANA name (Europe/Berlin) or "
            "an offset (+01:00)"
        )
        raise ValueError(msg)
    match = _OFFSET.match(text)
    zone = _known_to_gettz(text)
    if zone is not None:
        if match and isinstance(zone, tz.tzstr):
            _warn_posix_sign(text, zone, _match_minutes(match))
        return zone
    if text.lower() in WINDOWS_ZONES:
        return _iana_zone(WINDOWS_ZONES[text.lower()])
    upper = text.upper()
    if upper in ABBREVIATIONS:
        zone = _known_to_gettz(upper)
        if zone is not None:
            return zone
        if upper in AMBIGUOUS:
            warn(
                f"time zone {text!r} also names {AMBIGUOUS[upper]}; it is "
                f"taken as UTC{ABBREVIATIONS[upper]:+g}: give an IANA name "
                "(Europe/Berlin) or an offset to be sure",
                UserWarning,
            )
        return _offset_zone(hours=ABBREVIATIONS[upper], name=name)
    if match:
        return _offset_zone(minutes=_match_minutes(match), name=name)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = (
            f"time zone {name!r} is not an IANA name (Europe/Berlin), a known "
            "abbreviation (CET), a Windows name (W. Europe Standard Time), an "
            "offset (+01:00) or a POSIX TZ string (EST5EDT,M3.2.0,M11.1.0)"
        )
        raise ValueError(msg) from exc


def _match_minutes(match) -> int:
    """Return the minutes east of UTC of an :data:`_OFFSET` match."""
    sign = -1 if match["sign"] == "-" else 1
    return sign * (int(match["h"]) * 60 + int(match["m"] or 0))


def _warn_posix_sign(text, zone, iso_minutes) -> None:
    """Warn if gettz's POSIX reading of an offset has the other sign."""
    try:
        posix = zone.utcoffset(datetime(2000, 1, 1))
    except ValueError:
        return  # a day or more from UTC: unix_ms says so
    if posix != timedelta(minutes=iso_minutes):
        hours, minutes = divmod(abs(iso_minutes), 60)
        iso = f"{'-' if iso_minutes < 0 else '+'}{hours:02d}:{minutes:02d}"
        warn(
            f"time zone {text!r} is a POSIX TZ string, taken as "
            f"UTC{posix.total_seconds() / 3600:+g} as RosettaSciIO (dateutil) "
            f"takes it: write {iso!r} for UTC{iso_minutes / 60:+g}",
            UserWarning,
        )


def unix_ms(date_text, time_text, zone="UTC") -> int:
    """Return the UTC unix time, in whole milliseconds, of a local date and time.

    Parameters
    ----------
    date_text : str
        ISO date, ``YYYY-MM-DD``.
    time_text : str
        ISO time, ``HH:MM:SS`` with optional fractional seconds.
    zone : str, optional
        Time zone of the date and time, read by :func:`parse_time_zone`.

    Returns
    -------
    int
        Milliseconds since 1970-01-01 00:00 UTC, rounded to the nearest.

    Raises
    ------
    ValueError
        If the date, the time or the zone cannot be read, or the moment is
        before 1970 or after 2106 (a uint32 of seconds).

    Warns
    -----
    UserWarning
        If the zone is doubtful (see :func:`parse_time_zone`), or the local
        time happens twice or not at all there (a change of daylight-saving
        time): the offset taken is then dateutil's, as in RosettaSciIO (the
        first of two times; for a time that does not exist, the offset after
        the change).
    """
    try:
        moment = datetime.combine(
            date.fromisoformat(str(date_text)), time.fromisoformat(str(time_text))
        )
    except ValueError as exc:
        msg = f"cannot read the date {date_text!r} and time {time_text!r}: {exc}"
        raise ValueError(msg) from exc
    # fold 0, as dateutil's parser gives RosettaSciIO
    moment = moment.replace(tzinfo=parse_time_zone(zone), fold=0)
    try:
        offset = moment.utcoffset()
        doubtful = tz.datetime_ambiguous(moment) or not tz.datetime_exists(moment)
    except ValueError as exc:
        # a POSIX TZ string may hold an offset of a day or more
        msg = f"time zone {zone!r} is a day or more from UTC on {date_text}"
        raise ValueError(msg) from exc
    if doubtful:
        warn(
            f"{date_text} {time_text} is ambiguous or does not exist in "
            f"{zone} (a change of daylight-saving time); it is taken as "
            f"UTC{offset.total_seconds() / 3600:+g}",
            UserWarning,
        )
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    # whole microseconds, rounded half up to milliseconds
    ms = (delta // timedelta(microseconds=1) + 500) // 1000
    if not 0 <= ms < 2**32 * 1000:
        msg = f"{date_text} {time_text} {zone} cannot be stored as uint32 unix seconds"
        raise ValueError(msg)
    return ms
