"""Generic masking: variables become <*>, code words and enum constants stay."""

import pytest

from intelligence.logpatterns.masking import Masker, tokenize


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("12345", "<*>"),
        ("-42", "<*>"),
        ("3.25s", "<*>"),
        ("0x7f3a9c", "<*>"),
        ("10.0.3.7", "<*>"),
        ("10.0.3.7:5432", "<*>"),
        ("/10.0.3.7:5432", "<*>"),
        ("[10.0.3.7]", "[<*>]"),
        ("3edec1e4-9678-4a3a-a21b-a145a4ee5e61", "<*>"),
        ("/var/lib/app/data.db", "<*>"),
        ("https://example.com/a?b=1", "<*>"),
        ("db-primary.prod.example.com", "<*>"),
        ("blk_-6952295868487656571", "<*>"),
        ("attempt_1445144423722_0020_m_000000_0", "<*>"),
        ("uid=0", "uid=<*>"),
        ("vCores:4", "vCores:<*>"),
        ("CPU#1", "CPU#<*>"),
        ("jetty-6.1.26", "jetty-<*>"),
        ("v6.1.7601.23505", "<*>"),
        ("mesos-slave-07", "<*>"),
        ("C:\\Windows\\system32\\cbs.dll", "<*>"),
        ("deadbeefcafe1234", "<*>"),
    ],
)
def test_variables_are_masked(token: str, masked: str) -> None:
    assert Masker().mask_token(token) == masked


@pytest.mark.parametrize(
    "token",
    ["root", "SCREEN_ON", "jk2_init()", "tty2", "Slf4jLogger", "org.apache.hadoop.Foo", "ssh2"],
)
def test_words_and_code_identifiers_are_kept(token: str) -> None:
    assert Masker().mask_token(token) == token


def test_digit_shape_cache_keeps_real_digits_of_constant_parts() -> None:
    m = Masker()
    assert m.mask_token("tty2:5") == "tty2:<*>"
    # Same digit shape, different constant digits: must not reuse "tty2".
    assert m.mask_token("tty3:7") == "tty3:<*>"


def test_multi_token_values_fold_into_one_token() -> None:
    assert tokenize("connection from 1.2.3.4 at Sun Jul 10 03:55:15 2005 ok") == [
        "connection",
        "from",
        "1.2.3.4",
        "at",
        "<*>",
        "ok",
    ]
    assert tokenize("stored (estimated size 23.4 KB, free 1.2 MB)")[2:] == [
        "size",
        "<*>,",
        "free",
        "<*>)",
    ]
    assert tokenize('1.2.3.4 "GET /v2/servers/detail HTTP/1.1" status: 200') == [
        "1.2.3.4",
        '"GET',
        '<*>"',
        "status:",
        "200",
    ]


def test_plain_number_fast_path_agrees_with_the_full_rules() -> None:
    import random

    from intelligence.logpatterns import masking

    rng = random.Random(5)
    chars = "0123456789.:,-_+()[]'\",;"
    checked = 0
    for _ in range(20_000):
        token = "".join(rng.choice(chars) for _ in range(rng.randint(1, 8)))
        fast = masking._plain_number(token)
        if fast is None:
            continue
        full = masking._VARIABLE.sub("<*>", token)
        full = masking._GLUED.sub("<*>", full)
        assert fast == full, token
        checked += 1
    assert checked > 1000


def test_fast_key_path_equals_full_masking() -> None:
    lines = [
        "Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6",
        "connection from 1.2.3.4 () at Sun Jul 10 03:55:15 2005",
        "stored (estimated size 23.4 KB, free 1.2 MB)",
        '1.2.3.4 "GET /v2/servers/detail HTTP/1.1" status: 200',
        "ROOT LOGIN ON tty2",
        "naïve café 12 résumé",
        "tty3:7 and tty2:5",
        "tty4:8 and tty1:6",
        "at Sun Jul 10 03:55:15 2005 done",
        "at Sun Jul 10 03:55:15 1234 done",
    ]
    a, b = Masker(), Masker()
    for line in lines * 2:
        assert list(a.mask_key(line)) == b.mask_line(line)[1], line


def test_huge_tokens_are_one_value_and_cheap() -> None:
    blob = "a" + "1b" * 50_000  # would backtrack quadratically in the token regexes
    assert Masker().mask_key(f"payload {blob} end") == ("payload", "<*>", "end")
    assert Masker().mask_token("z" * 500) == "z" * 500


@pytest.mark.parametrize(
    ("token", "masked"),
    [("true", "<*>"), ("obj=false", "obj=<*>"), ("(True),", "(<*>),"), ("trueish", "trueish")],
)
def test_boolean_values_are_variables(token: str, masked: str) -> None:
    assert Masker().mask_token(token) == masked
    assert Masker().mask_key(f"flag {token}") == ("flag", masked)
