"""Synthetic hard cases for the miner, one per kind of under-merging seen on unseen systems.

Every case is written in made-up log styles (not copied from any benchmark system): a true
template whose variable shows only two or three values, or changes its token count, must
still be one template; and the guards (enum constants, keys that differ) must still split.
"""

from intelligence.logpatterns.masking import collapse_spans
from intelligence.logpatterns.miner import TemplateMiner, looks_variable


def _one_template(lines: list[str]) -> str:
    """Mine ``lines`` and return the single template text they must share."""
    m = TemplateMiner()
    ids = m.add_many(lines)
    final = {m.resolve(i) for i in ids}
    assert len(final) == 1, sorted(m.template_of(i).text for i in final)
    return m.template_of(ids[0]).text


def _count(lines: list[str]) -> int:
    m = TemplateMiner()
    return len({m.resolve(i) for i in m.add_many(lines)})


# --- variables with few distinct values, found by syntactic role ----------------------


def test_key_equals_value_with_two_values_is_a_slot() -> None:
    text = _one_template(
        [
            "dispatch batch queue=fast owner=ledger accepted",
            "dispatch batch queue=slow owner=ledger accepted",
        ]
    )
    assert text == "dispatch batch queue=<*> owner=ledger accepted"


def test_key_colon_value_in_separate_tokens_is_a_slot() -> None:
    text = _one_template(
        [
            "Policy: strict, applied to tenant group west",
            "Policy: relaxed, applied to tenant group west",
        ]
    )
    assert text == "Policy: <*>, applied to tenant group west"
    text = _one_template(
        [
            "tenant west state: Staged (pending reboot)",
            "tenant west state: Installed (pending reboot)",
        ]
    )
    assert text == "tenant west state: <*> (pending reboot)"


def test_a_component_label_followed_by_a_sentence_is_not_a_key() -> None:
    lines = [
        "ciod: failed to read message prefix on control stream",
        "ciod: managed to read message prefix on control stream",
    ]
    assert _count(lines) == 2


def test_quoted_value_of_varying_word_count_is_one_slot() -> None:
    text = _one_template(
        [
            'emit label="Nightly Batch Run" lane=blue retries left',
            'emit label="Cache Warmer" lane=blue retries left',
            'emit label="Reaper" lane=blue retries left',
        ]
    )
    assert text == 'emit label="<*>" lane=blue retries left'


def test_null_and_an_object_in_one_value_position_are_one_slot() -> None:
    _one_template(
        [
            "bind handle owner=alpha session=null pinned",
            "bind handle owner=alpha session=Session{worker} pinned",
        ]
    )


def test_bare_null_versus_a_name_is_a_slot() -> None:
    _one_template(
        [
            "commit hook resolved to null for this stage",
            "commit hook resolved to Hooks for this stage",
        ]
    )


def test_a_name_after_a_naming_noun_with_two_values_is_a_slot() -> None:
    text = _one_template(
        ["lock taken for user mallory by (pid=12)", "lock taken for user trent by (pid=40)"]
    )
    assert text == "lock taken for user <*> by (pid=<*>)"
    _one_template(["drained node lyra, moving on", "drained node vega, moving on"])
    # A word after the noun that a sentence continues from is not a name.
    assert _count(["open file failed on retry", "open file succeeded on retry"]) == 2
    assert _count(["session opened for alice", "session closed for alice"]) == 2


def test_long_dotted_identifiers_with_two_values_are_one_slot() -> None:
    text = _one_template(
        [
            "loading module net.corp.billing.ledger.Reconciler from warm cache",
            "loading module net.corp.billing.api.Gateway from warm cache",
        ]
    )
    assert text == "loading module <*> from warm cache"


def test_tilde_and_underscore_joined_identifiers_are_one_slot() -> None:
    _one_template(
        [
            "staging bundle Core~amd64~en-US~~ for apply phase now",
            "staging bundle Extras~arm64~~~ for apply phase now",
        ]
    )
    _one_template(
        [
            "worker pool_main_loop yielded control back to scheduler",
            "worker io_ring_poll yielded control back to scheduler",
        ]
    )


def test_camel_case_component_names_are_one_slot() -> None:
    text = _one_template(
        [
            "session 12 initialized by client UpdateOrchestratorAgent now",
            "session 40 initialized by client TrustedInstallerService now",
        ]
    )
    assert text == "session <*> initialized by client <*> now"
    assert _count(["job Started by operator", "job Stopped by operator"]) == 2


def test_bracketed_file_names_are_one_slot() -> None:
    text = _one_template(
        [
            "assertion hit in [sched_core.c] during warm restart",
            "assertion hit in [iomap.h] during warm restart",
        ]
    )
    assert text == "assertion hit in [<*>] during warm restart"


def test_several_value_positions_differing_at_once_are_one_template() -> None:
    """Siblings that differ in two value-like positions (no single-position evidence)."""
    _one_template(
        [
            "route com.acme.api.Orders to com.acme.impl.OrdersHandler ready",
            "route com.acme.api.Users to com.acme.impl.UsersHandler ready",
        ]
    )


def test_a_dash_for_a_missing_value_next_to_a_masked_one_is_a_slot() -> None:
    _one_template(["cache hit ratio=0.93 on shard east", "cache hit ratio=- on shard east"])
    _one_template(["probe latency (N/A) for edge", "probe latency (12ms) for edge"])


# --- values glued to punctuation or letters -----------------------------------------


def test_values_glued_to_letters_or_quotes_are_one_slot() -> None:
    _one_template(["rack node-D1 entered drain mode", "rack node-17 entered drain mode"])
    _one_template(
        [
            "sensor \\042fan3\\042 went over its limit",
            "sensor \\042psu\\042 went over its limit",
            "sensor \\042cpu0\\042 went over its limit",
        ]
    )
    _one_template(['volume "scratch" mounted read-write', 'volume "home2" mounted read-write'])


# --- variables that span a varying number of tokens ----------------------------------


def test_quantity_with_optional_unit_and_conversion_is_one_variable() -> None:
    text = _one_template(
        [
            "tunnel closed, 1190 bytes (1.16 KB) out, 0 bytes in, open 00:02",
            "tunnel closed, 0 bytes out, 0 bytes in, open <1 sec",
            "tunnel closed, 52 bytes out, 2048 bytes (2.00 KB) in, open 00:10",
            "tunnel closed, 7 bytes out, 9 bytes in, open 01:12",
        ]
    )
    assert text == "tunnel closed, <*> out, <*> in, open <*>"


def test_collapse_spans_folds_value_unit_and_conversion() -> None:
    folded = collapse_spans(("<*>", "bytes", "(<*>", "KB)", "sent,", "ok"))
    assert folded is not None
    assert folded[0] == ("<*>", "sent,", "ok")
    assert folded[1] == [0, 4, 5]
    assert collapse_spans(("<*>", "sent")) is None


def test_a_unit_alone_stays_when_every_line_has_it() -> None:
    text = _one_template([f"flush took {n} ms on shard {n % 7}" for n in range(5)])
    assert text == "flush took <*> ms on shard <*>"


# --- guards: what must still split -------------------------------------------------


def test_enum_constants_in_value_positions_need_more_evidence() -> None:
    lines = [
        "dispatch EventKind: LEASE_GRANTED for lease 4",
        "dispatch EventKind: LEASE_REVOKED for lease 5",
    ]
    assert _count(lines) == 2


def test_an_error_name_spelling_out_a_masked_code_is_a_value() -> None:
    text = _one_template(
        [
            "Failed to stage bundle. [HRESULT = 0x800f0805 - E_INVALID_BUNDLE]",
            "Failed to stage bundle. [HRESULT = 0x80070002 - E_FILE_MISSING]",
        ]
    )
    assert text == "Failed to stage bundle. [HRESULT = <*> - <*>]"
    _one_template(["open failed: error 2 (NO_SUCH_FILE)", "open failed: error 13 (ACCESS_DENIED)"])


def test_different_keys_are_different_templates() -> None:
    assert _count(["limits cpuQuota:<7> set", "limits memQuota:<9> set"]) == 2


def test_parenthesised_remarks_are_not_values() -> None:
    assert _count(["region 0x1000 - 0x2000 (usable)", "region 0x3000 - 0x4000 (reserved)"]) == 2


def test_plain_words_still_need_three_values() -> None:
    assert _count(["Changing view acls to: yarn", "Changing modify acls to: yarn"]) == 2


def test_looks_variable_by_role_and_shape() -> None:
    assert looks_variable("fast", "queue:")
    assert looks_variable("fast,", "queue:", "next")
    assert not looks_variable("failed", "ciod:", "to")
    assert looks_variable("queue=fast", None)
    assert looks_variable("[core.c]", None)
    assert looks_variable("a.b.c", None)
    assert looks_variable("null", None)
    assert not looks_variable("rhost=", "ruser=")
    assert not looks_variable("fast", "speed")
    assert looks_variable("mallory", "user", "by")
    assert not looks_variable("started", "job", "by")
    assert not looks_variable("SCREEN_ON", "action:")
    assert not looks_variable("(usable)", None)


def test_short_upper_case_words_in_value_positions_are_values() -> None:
    text = _one_template(
        [
            "request done method=GET status=200 took=5ms",
            "request done method=POST status=201 took=9ms",
        ]
    )
    assert text == "request done method=<*> status=<*> took=<*>"


def test_a_device_label_with_a_digit_is_a_value() -> None:
    text = _one_template(
        ["nvme0: I/O 12 QID 3 timeout, aborting", "nvme1: I/O 40 QID 1 timeout, aborting"]
    )
    assert text == "<*>: I/O <*> QID <*> timeout, aborting"


def test_generated_systems_are_deterministic_and_labelled() -> None:
    from benchmarks.synthetic_logs import SYSTEMS, generate

    for name in SYSTEMS:
        contents, truth = generate(name, lines=50)
        assert (contents, truth) == generate(name, lines=50)
        assert len(contents) == len(truth) == 50
        assert all("<*>" in t for t in truth)


def test_sibling_indexes_stay_bounded() -> None:
    from intelligence.logpatterns import miner as miner_module

    m = TemplateMiner()
    # Two constants in eight tokens: too few for a merge, so the skeleton group only grows.
    m.add_many([f"a b v{i}.x w{i}.y u{i}.z t{i}.q s{i}.r p{i}.s" for i in range(300)])
    assert all(len(g) <= miner_module._MAX_GROUP for g in m._skeletons.values())


def test_span_and_skeleton_merges_survive_a_state_round_trip() -> None:
    import json

    m = TemplateMiner()
    m.add_many(
        [
            "tunnel closed, 1190 bytes (1.16 KB) out, open 00:02",
            "tunnel closed, 0 bytes out, open <1 sec",
            "dispatch batch queue=fast owner=ledger accepted",
            "dispatch batch queue=slow owner=ledger accepted",
        ]
    )
    restored = TemplateMiner.from_state(json.loads(json.dumps(m.to_state())))
    assert {t.text for t in restored.templates.values()} == {t.text for t in m.templates.values()}
    tid = restored.add("tunnel closed, 2048 bytes (2.00 KB) out, open 00:07").template_id
    assert restored.template_of(tid).text == "tunnel closed, <*> out, open <*>"
    tid = restored.add("dispatch batch queue=bulk owner=ledger accepted").template_id
    assert restored.template_of(tid).text == "dispatch batch queue=<*> owner=ledger accepted"
    assert len(restored.templates) == 2


def test_merged_ids_do_not_depend_on_arrival_order() -> None:
    lines = [
        "tunnel closed, 1190 bytes (1.16 KB) out, open 00:02",
        "tunnel closed, 0 bytes out, open <1 sec",
        "dispatch batch queue=fast owner=ledger accepted",
        "dispatch batch queue=slow owner=ledger accepted",
    ]
    a, b = TemplateMiner(), TemplateMiner()
    ids_a = [a.resolve(i) for i in a.add_many(lines)]
    ids_b = [b.resolve(i) for i in b.add_many(lines[::-1])][::-1]
    assert ids_a == ids_b
