"""Cases cut from a scoring run: planted groups come out whole, with the kind and summary that say why."""

from __future__ import annotations

from tests.cases.helpers import DAY, cases_of, farm, organic, star


def test_a_farm_is_one_case_with_its_devices_and_a_readable_summary() -> None:
    cases = cases_of(farm(accounts=38, devices=3) + organic())
    assert [c["kind"] for c in cases] == ["farm"]
    (c,) = cases
    assert {m["node"] for m in c["members"] if m["kind"] == "device"} == {"fphone0", "fphone1", "fphone2"}
    # The accounts, and their recipients: fed only by the farm, the scorer flags them as sinks.
    assert {m["node"] for m in c["members"] if m["kind"] == "user"} == {f"f{x}{i}" for i in range(38) for x in "ur"}
    assert c["summary"] == "38 accounts on 3 devices sharing coupon cp_12 to 38 recipients within 6 h"
    assert c["stats"]["users"] == 76 and c["stats"]["devices"] == 3 and c["stats"]["recipients"] == 38
    # Evidence: each account's link to its phone, with the times of its shares.
    links = [e for e in c["evidence"]["edges"] if e["kind"] == "device"]
    assert len(links) == 76 and c["evidence"]["truncated"] is False
    first = next(e for e in links if e["target"] == "fu1")
    assert (first["source"], first["shares"], first["first_ts"]) == ("fphone1", 1, 1_600_000)
    links = [e for e in links if e["target"] == "fu1"]
    assert sorted((e["source"], e["first_ts"], e["last_ts"]) for e in links) == [
        ("fphone1", 1_600_000, 1_600_000), ("fphone2", 1_900_000, 1_900_000)]
    # Members carry their own scores, worst first.
    anomalies = [m["anomaly"] for m in c["members"]]
    assert anomalies == sorted(anomalies, reverse=True) and min(anomalies) >= 0.5


def test_a_star_pulls_in_its_sinks_and_two_groups_stay_apart() -> None:
    cases = cases_of(star() + farm() + organic())
    kinds = sorted(c["kind"] for c in cases)
    assert kinds == ["farm", "star"]
    s = next(c for c in cases if c["kind"] == "star")
    users = {m["node"] for m in s["members"] if m["kind"] == "user"}
    assert users == {"ssprayer", *(f"ssink{i}" for i in range(60))}
    assert s["summary"] == "1 account spraying coupon cp_7 to 60 recipients (60 of them sinks in this case) within 13 h"
    shares = [e for e in s["evidence"]["edges"] if e["kind"] == "share"]
    assert [e["ts"] for e in shares] == sorted(e["ts"] for e in shares)


def test_lockstep_accounts_on_their_own_phones_are_tied_by_timing() -> None:
    # Ten accounts, each on its own phone, share the same three coupons within seconds, three times.
    events = [{"user_id": f"l{a}", "device_id": f"ld{a}", "coupon_id": f"lc{c}", "ts": DAY * c + 5.0 * a,
               "recipients": [f"x{a}-{c}-{k}" for k in range(2)]} for c in range(3) for a in range(10)]
    cases = cases_of(events + organic())
    lock = [c for c in cases if c["kind"] == "lockstep"]
    assert len(lock) == 1
    assert {m["node"] for m in lock[0]["members"] if m["kind"] == "user"} == {f"l{a}" for a in range(10)}
    assert "in lockstep (within 60 s of each other)" in lock[0]["summary"]


def test_the_subgraph_is_capped_and_says_so() -> None:
    from graphs.cases.build import CaseParams, build_cases
    from graphs.events.jsonl import read_events
    from graphs.scorers.score import score_table

    res = score_table(read_events(farm(accounts=30)))
    (full,) = build_cases(res)
    (cut,) = build_cases(res, CaseParams(subgraph_nodes=10, evidence=5))
    assert full["subgraph"]["truncated"] is False and len(full["subgraph"]["nodes"]) == 61
    assert cut["subgraph"]["truncated"] is True and len(cut["subgraph"]["nodes"]) == 10
    assert cut["subgraph"]["nodes"][0] == {"id": "fphone0", "kind": "device", "anomaly": 1.0,
                                           "kol": full["subgraph"]["nodes"][0]["kol"]}
    assert len(cut["evidence"]["edges"]) == 5 and cut["evidence"]["total"] == 30 + 60  # 30 links, 60 shares
    assert cut["evidence"]["truncated"] is True


def test_nothing_flagged_no_cases() -> None:
    assert cases_of(organic()) == []
