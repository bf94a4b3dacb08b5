"""Time zones: the same ``General`` metadata means the same instant as in RosettaSciIO.

RosettaSciIO's own reading (``get_date_time_from_metadata``) is asked for the
instant wherever it can tell one; only where it cannot are this package's
documented values asserted.
"""

import os
import re
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from dateutil import tz
from dateutil.parser import ParserError, UnknownTimezoneWarning

from rsciio_tvips._metadata.times import parse_time_zone, unix_ms

get_date_time_from_metadata = pytest.importorskip(
    "rsciio.utils._date_time"
).get_date_time_from_metadata

SUMMER = ("1993-06-18", "12:34:56")
WINTER = ("2020-01-15", "08:00:00")


@contextmanager
def host_zone(name):
    """Run with the computer's own zone set to ``name`` (where it can be set).

    gettz caches what it found, ``tzlocal()`` included, so the cache is
    emptied on the way in and out: a zone of one test must not leak into the
    reference of another.
    """
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    if hasattr(time, "tzset"):
        time.tzset()
    tz.gettz.cache_clear()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        if hasattr(time, "tzset"):
            time.tzset()
        tz.gettz.cache_clear()


@pytest.fixture(autouse=True)
def utc_host():
    """Compare on a computer in UTC, where no abbreviation is the host's own."""
    with host_zone("UTC"):
        yield


def rsciio_ms(date, time_, zone):
    """Return RosettaSciIO's instant in unix ms, or None if it cannot tell one."""
    meta = {"General": {"date": date, "time": time_, "time_zone": zone}}
    with warnings.catch_warnings():
        # dateutil's parser says so when it sees a name it cannot place
        warnings.simplefilter("ignore", UnknownTimezoneWarning)
        try:
            moment = get_date_time_from_metadata(meta, formatting="datetime")
        except ParserError:
            return None
    if moment.tzinfo is None:
        return None
    return round(moment.timestamp() * 1000)


def fixed_ms(date, time_, hours):
    """Return the unix ms of a local time ``hours`` east of UTC."""
    local = datetime.fromisoformat(f"{date}T{time_}")
    return round(
        local.replace(tzinfo=timezone(timedelta(hours=hours))).timestamp() * 1000
    )


# Names RosettaSciIO reads (gettz, or its offset fallback), with no own value.
SHARED = [
    "CET",
    "EET",
    "WET",
    "MET",
    "EST",
    "MST",
    "HST",
    "Europe/Berlin",
    "America/New_York",
    "UTC",
    "GMT",
    "Z",
    "+01:00",
    "-0500",
    "UTC-5",
    "GMT+1",
    "UTC+05:30",
    # POSIX TZ strings: their signs and daylight-saving rules are gettz's
    "EST5",
    "EST5EDT",
    "EST5EDT,M3.2.0,M11.1.0",
    "CET-1CEST,M3.5.0,M10.5.0/3",
    "UTC+3EDT",
]


@pytest.mark.parametrize("when", [SUMMER, WINTER], ids=["summer", "winter"])
@pytest.mark.parametrize("zone", SHARED)
def test_same_instant_as_rosettasciio(zone, when):
    reference = rsciio_ms(*when, zone)
    assert reference is not None, f"RosettaSciIO no longer reads {zone!r}"
    assert unix_ms(*when, zone) == reference


@pytest.mark.parametrize("when", [SUMMER, WINTER], ids=["summer", "winter"])
@pytest.mark.parametrize(
    ("zone", "iana"),
    [
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("Coordinated Universal Time", "UTC"),
    ],
)
def test_windows_names_are_their_iana_zone(zone, iana, when):
    # RosettaSciIO reads Windows names only on Windows (from the registry)
    reference = rsciio_ms(*when, zone)
    if reference is None:
        reference = rsciio_ms(*when, iana)
    assert unix_ms(*when, zone) == reference


@pytest.mark.parametrize("when", [SUMMER, WINTER], ids=["summer", "winter"])
@pytest.mark.parametrize(
    ("zone", "hours"),
    [("PST", -8), ("PDT", -7), ("CEST", 2), ("JST", 9), ("UT", 0)],
)
def test_abbreviations_gettz_does_not_know(zone, hours, when):
    # the table's fixed offset, the same in June and in January
    reference = rsciio_ms(*when, zone)
    expected = fixed_ms(*when, hours) if reference is None else reference
    assert unix_ms(*when, zone) == expected


@pytest.mark.parametrize("when", [SUMMER, WINTER], ids=["summer", "winter"])
@pytest.mark.parametrize("spelling", ["cet", "Cet", " CET ", ":CET"])
def test_spellings_of_a_gettz_name_agree(spelling, when):
    assert unix_ms(*when, spelling) == rsciio_ms(*when, "CET")


def test_cet_follows_daylight_saving_time():
    # the case of the issue: June is CEST, whatever the name says
    assert unix_ms(*SUMMER, "CET") == fixed_ms(*SUMMER, 2) == rsciio_ms(*SUMMER, "CET")
    assert unix_ms(*WINTER, "CET") == fixed_ms(*WINTER, 1) == rsciio_ms(*WINTER, "CET")


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="the host zone is fixed")
def test_the_host_zone_does_not_matter():
    on_utc_host = {z: unix_ms(*SUMMER, z) for z in ("PST", "PDT", "CET")}
    with host_zone("America/Los_Angeles"):
        # the trap: gettz gives the host's zone for its own abbreviations
        assert isinstance(tz.gettz("PST"), tz.tzlocal)
        assert rsciio_ms(*SUMMER, "PST") == fixed_ms(*SUMMER, -7)
        on_la_host = {z: unix_ms(*SUMMER, z) for z in on_utc_host}
    assert on_la_host == on_utc_host
    assert on_la_host["PST"] == fixed_ms(*SUMMER, -8)


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("CST", "time zone 'CST' also names China (+8); it is taken as UTC-6"),
        ("cst", "time zone 'cst' also names China (+8); it is taken as UTC-6"),
        ("IST", "time zone 'IST' also names Ireland (+1) or Israel (+2)"),
        ("BST", "time zone 'BST' also names Bangladesh (+6); it is taken as UTC+1"),
    ],
)
def test_ambiguous_abbreviations_warn(zone, message):
    with pytest.warns(UserWarning, match=re.escape(message)):
        unix_ms(*WINTER, zone)


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="the host zone is fixed")
def test_ambiguous_abbreviation_warns_in_its_own_zone_too():
    # on a computer in Chicago gettz gives tzlocal() for CST: the table decides
    with (
        host_zone("America/Chicago"),
        pytest.warns(UserWarning, match="also names China"),
    ):
        assert unix_ms(*SUMMER, "CST") == fixed_ms(*SUMMER, -6)


@pytest.mark.parametrize(
    ("date", "time_", "zone", "hours"),
    [
        ("2021-03-28", "02:30:00", "Europe/Berlin", 2),  # does not exist
        ("2021-03-28", "02:30:00", "CET", 2),
        ("2021-10-31", "02:30:00", "Europe/Berlin", 2),  # happens twice
        ("2021-03-14", "02:30:00", "EST5EDT,M3.2.0,M11.1.0", -4),
    ],
)
def test_daylight_saving_changes_warn(date, time_, zone, hours):
    message = re.escape(
        f"{date} {time_} is ambiguous or does not exist in {zone} (a change of "
        f"daylight-saving time); it is taken as UTC{hours:+d}"
    )
    with pytest.warns(UserWarning, match=message):
        ours = unix_ms(date, time_, zone)
    assert ours == rsciio_ms(date, time_, zone)


def test_a_lower_case_utc_offset_is_a_posix_string():
    with pytest.warns(
        UserWarning,
        match=r"^time zone 'utc\+1' is a POSIX TZ string, taken as UTC-1 as "
        r"RosettaSciIO \(dateutil\) takes it: write '\+01:00' for UTC\+1$",
    ):
        ours = unix_ms(*SUMMER, "utc+1")
    assert ours == rsciio_ms(*SUMMER, "utc+1") == fixed_ms(*SUMMER, -1)


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("Mars/Olympus", "time zone 'Mars/Olympus' is not an IANA name"),
        # tzstr half-reads it: UTC+1 in winter, UTC-5 in summer
        ("UTC+1.5", r"time zone 'UTC\+1\.5' is not an IANA name"),
        ("localtime", "time zone 'localtime' names the zone of the computer"),
        ("/etc/localtime", "time zone '/etc/localtime' names the zone of the"),
        ("", "time zone '' is empty"),
        ("UTC+25", r"time zone 'UTC\+25' is a day or more from UTC on 2020-01-15"),
        ("-25:00", "time zone '-25:00' is a day or more from UTC$"),
    ],
)
def test_unreadable_zones(zone, message):
    with pytest.raises(ValueError, match=message):
        unix_ms(*WINTER, zone)


def test_parse_time_zone_keeps_daylight_saving_rules():
    zone = parse_time_zone("Europe/Berlin")
    assert datetime(1993, 6, 18, tzinfo=zone).utcoffset() == timedelta(hours=2)
    assert datetime(2020, 1, 15, tzinfo=zone).utcoffset() == timedelta(hours=1)
