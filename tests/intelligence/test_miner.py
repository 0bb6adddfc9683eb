"""Template mining behaviour on synthetic lines: merge, split, persistence, memory bound."""

import json

from intelligence.logpatterns.miner import MinerConfig, TemplateMiner


def _texts(miner: TemplateMiner) -> set[str]:
    return {t.text for t in miner.templates.values()}


def test_lines_differing_only_in_masked_values_share_a_template() -> None:
    m = TemplateMiner()
    ids = m.add_many(
        [
            "Receiving block blk_1 src: /10.0.0.1:5000 dest: /10.0.0.2:5000",
            "Receiving block blk_-2 src: /10.0.0.3:5001 dest: /10.0.0.4:5000",
        ]
    )
    assert ids[0] == ids[1]
    assert _texts(m) == {"Receiving block <*> src: <*> dest: <*>"}


def test_word_position_with_many_values_becomes_a_slot() -> None:
    m = TemplateMiner()
    users = ["alice", "bob", "carol", "dave"]
    ids = m.add_many([f"session opened for user {u} by (uid=0)" for u in users])
    final = {m.resolve(i) for i in ids}
    assert len(final) == 1
    assert m.template_of(ids[0]).text == "session opened for user <*> by (uid=<*>)"


def test_enum_like_states_stay_separate_templates() -> None:
    m = TemplateMiner()
    lines = [
        f"attempt_{n}_0001 TaskAttempt Transitioned from {a} to {b}"
        for n in range(20)
        for a, b in [("NEW", "UNASSIGNED"), ("UNASSIGNED", "ASSIGNED"), ("ASSIGNED", "RUNNING")]
    ]
    ids = m.add_many(lines)
    assert len({m.resolve(i) for i in ids}) == 3
    assert "<*> TaskAttempt Transitioned from NEW to UNASSIGNED" in _texts(m)


def test_two_values_are_not_enough_evidence_for_a_slot() -> None:
    m = TemplateMiner()
    ids = m.add_many(["Changing view acls to: yarn", "Changing modify acls to: yarn"])
    assert m.resolve(ids[0]) != m.resolve(ids[1])


def test_empty_value_next_to_masked_value_is_the_same_slot() -> None:
    m = TemplateMiner()
    ids = m.add_many(
        [
            "connection from 1.2.3.4 () at Sun Jul 10 03:55:15 2005",
            "connection from 1.2.3.5 (host8.example.net) at Mon Jul 11 03:55:15 2005",
        ]
    )
    assert m.resolve(ids[0]) == m.resolve(ids[1])
    assert m.template_of(ids[0]).text == "connection from <*> (<*>) at <*>"


def test_slot_keeps_shared_punctuation() -> None:
    m = TemplateMiner()
    ids = m.add_many([f"login ok user={u}" for u in ["ann", "ben", "cat", "dan"]])
    assert m.template_of(ids[-1]).text == "login ok user=<*>"


def test_template_ids_are_stable_across_runs() -> None:
    lines = [f"job {n} finished in {n * 3} ms on worker-{n % 4}" for n in range(50)]
    a, b = TemplateMiner(), TemplateMiner()
    assert a.add_many(lines) == b.add_many(lines)


def test_state_round_trip_keeps_templates_ids_and_learning() -> None:
    m = TemplateMiner()
    ids = m.add_many([f"session opened for user {u} by (uid=0)" for u in ["a", "b", "c"]])
    m.add_many(["disk full on /dev/sda1", "disk full on /dev/sdb1"])
    state = json.loads(json.dumps(m.to_state()))
    restored = TemplateMiner.from_state(state)
    assert _texts(restored) == _texts(m)
    assert restored.resolve(ids[0]) == m.resolve(ids[0])
    before = len(restored.templates)
    match = restored.add("session opened for user zed by (uid=0)")
    assert match.template_id == m.resolve(ids[0])
    assert not match.is_new
    assert len(restored.templates) == before
    assert restored.template_of(ids[0]).count == m.template_of(ids[0]).count + 1


def _word(n: int) -> str:
    """A digit-free word unique to ``n`` (digits would be masked away)."""
    out = ""
    while True:
        out += chr(65 + n % 26)
        n //= 26
        if not n:
            return out


def test_memory_is_bounded_on_an_unbounded_stream() -> None:
    m = TemplateMiner(MinerConfig(max_templates=100, max_leaves=500, max_buckets=2000))
    # every line is a new word sequence in every position: no template ever repeats
    lines = [f"{_word(n)}x {_word(n)}y {_word(n)}z" for n in range(3000)]
    for line in lines:
        m.add(line)
    assert len(m.templates) <= 100
    assert len(m._leaves) <= 500
    assert len(m._buckets) <= 2000
    assert m.match(lines[-1]) is not None  # least recently seen go first
    assert m.match(lines[0]) is None


def test_match_does_not_learn() -> None:
    m = TemplateMiner()
    m.add("worker 1 started")
    assert m.match("worker 7 started") is not None
    assert m.match("something else entirely") is None
    assert len(m.templates) == 1


def test_merged_template_id_depends_on_the_pattern_not_on_arrival_order() -> None:
    users = ["alice", "bob", "carol", "dave"]
    a, b = TemplateMiner(), TemplateMiner()
    ids_a = a.add_many([f"session opened for user {u} by (uid=0)" for u in users])
    ids_b = b.add_many([f"session opened for user {u} by (uid=0)" for u in reversed(users)])
    assert a.resolve(ids_a[0]) == b.resolve(ids_b[0])


def test_trailing_variable_lists_of_any_length_are_one_template() -> None:
    m = TemplateMiner()
    ids = m.add_many(
        [
            "BLOCK* ask 10.0.0.1:50010 to delete blk_1",
            "BLOCK* ask 10.0.0.2:50010 to delete blk_1 blk_2 blk_3",
            "BLOCK* ask 10.0.0.3:50010 to delete blk_4 blk_5",
            "BLOCK* ask 10.0.0.4:50010 to delete blk_6 blk_7 blk_8 blk_9 blk_10 blk_11",
        ]
    )
    assert len({m.resolve(i) for i in ids}) == 1
    assert m.template_of(ids[0]).text == "BLOCK* ask <*> to delete <*>"
    restored = TemplateMiner.from_state(json.loads(json.dumps(m.to_state())))
    assert restored.match("BLOCK* ask 10.0.0.9:50010 to delete blk_1 blk_2 blk_3 blk_4") is not None


def test_fixed_length_variable_runs_keep_one_slot_per_token() -> None:
    m = TemplateMiner()
    ids = m.add_many([f"onExtend:{n} {n + 1} {n + 2} {n + 3}" for n in range(5)])
    assert m.template_of(ids[-1]).text == "onExtend:<*> <*> <*> <*>"
