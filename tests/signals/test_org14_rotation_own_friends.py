"""``device_rotation`` does not count an account with friends of its own
(rotation.py): a family phone of five whose members hear from their friends'
own phones (seed 404 at 10 000 users), against farm phones whose accounts
hear only from the farm, or from senders who lost their standing, on
crafted share streams."""

from __future__ import annotations

from dataclasses import replace

from riskservice.signals.base import Reading
from riskservice.signals.catalog import SignalConfig
from riskservice.signals.rotation import DeviceRotation
from riskservice.signals.share import Share
from riskservice.signals.sinks import SinkFeeder
from tests.signals.test_board import MONTH, T0


class Records:
    """``device_rotation`` fed as the engine feeds it: the senders of each
    account (``sink_feeder``'s record) and the devices of each account."""

    def __init__(self, config: SignalConfig | None = None, wired: bool = True) -> None:
        config = config or SignalConfig()
        self.feeder = SinkFeeder(config)
        self.devices: dict[str, list[str]] = {}
        # accounts that lost their standing (the engine's test for the fan-out waiver)
        self.flagged: set[str] = set()
        self.rotation = (DeviceRotation(config, self.feeder.senders, lambda user, now: self.devices.get(user, []),
                                        lambda user, now: user in self.flagged)
                         if wired else DeviceRotation(config))
        self.n = 0

    def share(self, t: int, user: str, device: str, recipients: tuple[str, ...] = ()) -> list[Reading]:
        """One share; the rotation's readings (the device's count, judged before
        the share's recipients are recorded, as in the engine)."""
        self.n += 1
        share = Share(f"x{self.n}", T0 + t, user, device, "c1", recipients, True)
        known = self.devices.setdefault(user, [])
        if device not in known:
            known.append(device)
        readings = self.rotation.share(share)
        self.feeder.share(share)
        return readings


FAMILY = ("m0", "m1", "m2", "m3", "m4")


def family_phone(records: Records, friends: dict[str, int]) -> list[Reading]:
    """Friends on their own phones share to the family's members (``friends``:
    member -> how many), then each member shares from the family phone."""
    t = 0
    for member, count in friends.items():
        for i in range(count):
            t += 1
            records.share(t, f"{member}-f{i}", f"own-{member}-f{i}", (member,))
    readings = []
    for member in FAMILY:
        t += 1
        readings = records.share(t, member, "home", ("x",))
    return readings


def test_family_members_who_hear_from_as_many_friends_as_the_phone_has_accounts_do_not_count() -> None:
    records = Records()
    # m0 and m1 heard from five friends each (the phone's five accounts); m2
    # from four, one short; m3 and m4 from nobody.
    readings = family_phone(records, {"m0": 5, "m1": 5, "m2": 4})
    # Three count; the value holds until the oldest of them, m2 (the third
    # member's share, at t = 14 + 3), leaves the window.
    assert readings == [Reading("home", 3, T0 + 17 + MONTH)]


def test_the_same_phone_counts_all_five_with_the_test_off_or_without_the_engine_records() -> None:
    off = Records(replace(SignalConfig(), rotation_own_friends=False))
    assert family_phone(off, {"m0": 5, "m1": 5, "m2": 4}) == [Reading("home", 5, T0 + 15 + MONTH)]
    alone = Records(wired=False)
    assert family_phone(alone, {"m0": 5, "m1": 5, "m2": 4}) == [Reading("home", 5, T0 + 15 + MONTH)]


def test_device_mates_and_accounts_of_another_farm_phone_are_no_friends_of_its_own() -> None:
    records = Records()
    t = 0
    # A second farm phone with five accounts: every one of them shares to
    # every account of the first (each of those hears from five accounts
    # that never used its phone).
    for b in range(5):
        t += 1
        records.share(t, f"b{b}", "farm-b", ())
    for b in range(5):
        t += 1
        records.share(t, f"b{b}", "farm-b", tuple(f"a{a}" for a in range(5)))
    # The first phone's accounts also share among themselves.
    readings = []
    for a in range(5):
        t += 1
        readings = records.share(t, f"a{a}", "farm-a", tuple(f"a{x}" for x in range(5) if x != a))
    readings = records.share(t + 1, "a0", "farm-a", ("a1",))
    # Phone b carries the floor's accounts (4) or more: its accounts are the
    # farm's, not friends of a's own; and device-mates never count.
    assert readings == [Reading("farm-a", 5, T0 + 12 + MONTH)]


def test_a_friend_on_a_phone_of_three_still_counts() -> None:
    records = Records()
    # A friend's family phone of three (under the floor) is a friend's phone.
    for i in range(3):
        records.share(i, f"k{i}", "their-home", ())
    for i in range(3):
        records.share(10 + i, f"k{i}", "their-home", ("m0",))
    for i in range(2):
        records.share(20 + i, f"m0-f{i}", f"own-{i}", ("m0",))
    for t, member in enumerate(FAMILY):
        readings = records.share(30 + t, member, "home", ())
    # m0 heard from five such accounts: four of the five count.
    assert readings == [Reading("home", 4, T0 + 31 + MONTH)]


def test_a_sender_that_lost_its_standing_is_no_friend_of_its_own() -> None:
    records = Records()
    # m0's fifth friend is flagged (say a ring's member, as the senders a farm
    # would buy to hide its accounts are once they form a closed circle):
    # four friends are one short of the phone's five accounts.
    records.flagged.add("m0-f4")
    readings = family_phone(records, {"m0": 5, "m1": 5, "m2": 4})
    assert readings == [Reading("home", 4, T0 + 15 + MONTH)]
