"""Exchange's nested data objects as the lab builds them (edgebook.lab.cmdlets.exdata)."""

from __future__ import annotations

from edgebook.lab.cmdlets.exdata import receive_connector_id, server_id, server_ids


def test_a_servers_ad_object_id_is_built_once_and_equals_a_fresh_one():
    listed = server_ids(["EDGE01", "EDGE02"], "contoso.com")
    again = server_ids(["EDGE02"], "contoso.com")
    assert listed.items[1] is again.items[0]  # every connector listing EDGE02 shares it
    fresh = server_id.__wrapped__("EDGE02", "contoso.com")
    assert listed.items[1] == fresh
    assert fresh["DistinguishedName"].startswith("CN=EDGE02,CN=Servers,")
    assert server_id("EDGE02", "fabrikam.com") != fresh  # another organisation, another id


def test_a_receive_connector_identity_renamed_after_building_is_its_own_object():
    identity = receive_connector_id("EDGE01", "Default internal receive connector", "c.com", "")
    assert str(identity) == "EDGE01\\Default internal receive connector"
    assert str(server_id("EDGE01", "c.com")) == "EDGE01"
