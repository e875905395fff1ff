from oncall.lib.text import clean, json_needs_cleaning


def test_nul_and_unpaired_surrogates_are_cleaned_everywhere():
    dirty = {"ti\x00tle": ["a\x00b", "\ud800x", {"k": "\udfff"}], "n": 5, "ok": "é🔥"}
    assert clean(dirty) == {"title": ["ab", "?x", {"k": "?"}], "n": 5, "ok": "é🔥"}


def test_only_documents_with_such_escapes_need_cleaning():
    assert json_needs_cleaning('{"a": "x\\u0000"}')
    assert json_needs_cleaning('{"a": "\\ud800"}')
    assert json_needs_cleaning('{"a": "\\uDBFF"}')
    assert not json_needs_cleaning('{"a": "\\u00e9 plain"}')
