"""The policy file: the shipped one is valid; each kind of mistake is named with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskservice.errors import PolicyError
from riskservice.policy.load import load_policy, parse_policy

DEFAULT = Path("config/policy.yaml").read_text()


def test_shipped_policy_has_the_spec_defaults() -> None:
    rules = load_policy("config/policy.yaml").default.rules
    assert (rules.device_velocity.limit, rules.device_velocity.window_s) == (20, 300)
    assert rules.device_velocity.challenge == "captcha"
    assert (rules.device_daily_cap.limit, rules.device_daily_cap.window_s, rules.device_daily_cap.action) == (
        50, 86_400, "block")
    assert (rules.user_daily_cap.limit, rules.user_daily_cap.action) == (50, "block")
    assert (rules.fan_out.limit, rules.fan_out.challenge) == (10, "sms")
    assert rules.device_many_users.limit == 5
    assert "转发得现金" in rules.sensitive_copy.terms


def test_merchant_overrides_merge_onto_defaults() -> None:
    policy = parse_policy(DEFAULT.replace("merchants: {}", "merchants:\n  m42:\n    device_velocity: {limit: 8}"))
    m42 = policy.for_merchant("m42").rules
    assert m42.device_velocity.limit == 8 and m42.device_velocity.window_s == 300
    assert policy.for_merchant("other").rules.device_velocity.limit == 20
    assert policy.for_merchant(None) is policy.default


def test_version_changes_with_content() -> None:
    a = parse_policy(DEFAULT).version
    b = parse_policy(DEFAULT.replace("limit: 20", "limit: 21")).version
    assert a != b and a == parse_policy(DEFAULT).version


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("limit: 20,", "limit: -1,"), "rules.device_velocity.limit: Input should be greater than or equal to 1"),
        (("limit: 20,", "limit: '20',"), "rules.device_velocity.limit: Input should be a valid integer"),
        (("window_s: 300", "window_s: 0"), "rules.device_velocity.window_s"),
        (("challenge: sms", "challenge: email"), "rules.fan_out.challenge"),
        (("fan_out: {limit: 10, action: challenge, challenge: sms}", "fan_out: {limit: 10, action: challenge}"),
         "rules.fan_out.challenge: required when action is challenge"),
        (("action: block}\n  user_blocklist", "action: ban}\n  user_blocklist"), "rules.device_blocklist.action"),
        (("  device_blocklist: {action: block}\n", ""), "rules.device_blocklist: Field required"),
        (("device_velocity: {", "device_velocity: {limt: 3, "), "rules.device_velocity.limt: Extra inputs"),
        (("merchants: {}", "merchants:\n  m42:\n    device_velocity: {limit: 0}"),
         "merchants.m42.device_velocity.limit: Input should be greater than or equal to 1"),
        (("merchants: {}", "merchants:\n  m42:\n    velocity: {limit: 3}"), "merchants.m42.velocity: Extra inputs"),
        (("merchants: {}", "merchants:\n  m42: 5"), "merchants.m42: Input should be a valid dictionary"),
        (("      - 国家级", "      - '  ·'"), "rules.sensitive_copy.terms.7: is empty after normalisation"),
        (("name: default", "name: default\nextra: 1"), "extra: Extra inputs are not permitted"),
        (("rules:", "rules: [\n"), "not valid YAML"),
        # A key twice in one mapping: YAML alone keeps the last, silently.
        (("merchants: {}", "merchants:\n  m42:\n    device_velocity: {limit: 2}\n    device_velocity: {limit: 200}"),
         "found the key 'device_velocity' twice (first on line"),
    ],
)
def test_each_kind_of_mistake_names_its_place(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in DEFAULT
    with pytest.raises(PolicyError, match=r"^<policy>: ") as err:
        parse_policy(DEFAULT.replace(old, new, 1))
    assert message in str(err.value)


def test_not_a_mapping() -> None:
    with pytest.raises(PolicyError, match="must be a mapping"):
        parse_policy("- a list")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml: cannot read"):
        load_policy(tmp_path / "nope.yaml")
