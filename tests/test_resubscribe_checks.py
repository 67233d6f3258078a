"""Phase 03's refusal checks on their own: F22 from inspect's facts, F8 from a file's Duration."""

from __future__ import annotations

import datetime as dt

from edgebook.phases.resubscribe_checks import f22_problems, subscription_age_check
from tests.support.orgs import clean_world

DECRYPT = (  # Microsoft's text, shortened (docs/domain.md, F22)
    "EdgeSync failed to decrypt the credential for Edge Transport server EDGE1 using the private "
    "key of the default Exchange certificate with exception Bad Data. The certificate's "
    "thumbprint is {thumb} and its subject is CN=MBX1."
)


def _f22(subscribed: dt.datetime | None, failure: str = "") -> list[str]:
    world = clean_world()
    for sub in world.subscriptions:
        sub["CreateUtc"] = subscribed
    world.edgesync[0]["FailureDetail"] = failure
    org, edges = world.facts()
    return f22_problems(edges[0], org)


def _mailbox_default() -> tuple[str, dt.datetime]:
    org, _ = clean_world().facts()
    (mailbox,) = org.mailbox_servers
    default = next(c for c in mailbox.certificates if c.thumbprint == mailbox.internal_thumbprint)
    assert default.not_before is not None
    return default.thumbprint, default.not_before


def test_a_mailbox_default_older_than_the_subscription_is_no_f22():
    _, made = _mailbox_default()
    assert _f22(made + dt.timedelta(days=1)) == []
    assert _f22(None) == []  # no creation time read: nothing to compare


def test_a_mailbox_default_newer_than_the_subscription_is_f22():
    thumb, made = _mailbox_default()
    (problem,) = _f22(made - dt.timedelta(days=1))
    assert problem.startswith(f"F22: MBX1's default transport certificate {thumb} is newer than")
    assert "this plan resubscribes" in problem


def test_edgesync_failing_to_decrypt_names_the_default_or_the_edge():
    thumb, made = _mailbox_default()
    subscribed = made + dt.timedelta(days=1)  # an older certificate made the default
    (named,) = _f22(subscribed, DECRYPT.format(thumb=thumb))
    assert f"{thumb} is not the one EDGE1's subscription was made with" in named
    (unnamed,) = _f22(subscribed, DECRYPT.format(thumb="0" * 40))
    assert unnamed.startswith("F22: EdgeSync to EDGE1 fails to decrypt the credential")


def _subscription(duration: str) -> bytes:
    return (
        "\ufeff<?xml version='1.0'?><EdgeSubscriptionData><EdgeServerName>EDGE1</EdgeServerName>"
        f"<Duration>{duration}</Duration></EdgeSubscriptionData>"
    ).encode()


def test_a_subscription_file_is_too_old_two_minutes_before_its_account_expires():
    data = _subscription("1.00:00:00")  # 1440 minutes, as New-EdgeSubscription makes it
    assert subscription_age_check("subscription file", data, 60.0) is None
    assert subscription_age_check("subscription file", data, 1440 * 60 - 121) is None
    too_old = subscription_age_check("subscription file", data, 1440 * 60 - 119)
    assert too_old == (
        "F8: the subscription file was read 1438 min ago; its bootstrap account lives "
        "1440 min: too old to import"
    )
    assert subscription_age_check("file", _subscription("00:30:00"), 29 * 60) is not None


def test_what_is_not_a_subscription_file_is_named_so():
    for data in (b"not xml", b"<EdgeSubscriptionData/>", _subscription("soon"), b"\xff\xfe"):
        assert subscription_age_check("file", data, 0.0) == (
            "the file is not an Edge Subscription file"
        )
