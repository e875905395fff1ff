from oncall.lib.text import clean, json_needs_cleaning, xml_safe


def test_nul_and_unpaired_surrogates_are_cleaned_everywhere():
    dirty = {"ti\x00tle": ["a\x00b", "\ud800x", {"k": "\udfff"}], "n": 5, "ok": "é🔥"}
    assert clean(dirty) == {"title": ["ab", "?x", {"k": "?"}], "n": 5, "ok": "é🔥"}


def test_keys_that_clean_to_the_same_one_keep_the_first_place_and_the_last_value():
    assert list(clean({"a": 1, "b": 2, "a\x00": 3}).items()) == [("a", 3), ("b", 2)]


def test_a_value_nested_far_deeper_than_the_call_stack_goes_is_cleaned():
    depth = 100_000
    nested: object = {"k\x00": "v\x00"}
    for _ in range(depth):
        nested = [nested, "x\x00"]
    cleaned = clean(nested)
    for _ in range(depth):
        assert cleaned[1] == "x"
        cleaned = cleaned[0]
    assert cleaned == {"k": "v"}


def test_only_documents_with_such_escapes_need_cleaning():
    assert json_needs_cleaning('{"a": "x\\u0000"}')
    assert json_needs_cleaning('{"a": "\\ud800"}')
    assert json_needs_cleaning('{"a": "\\uDBFF"}')
    assert not json_needs_cleaning('{"a": "\\u00e9 plain"}')


def test_xml_safe_text_drops_colour_codes_and_blanks_what_xml_forbids():
    assert xml_safe("\x1b[31mERROR\x1b[0m payment\x1b[2K\x1b[1G crashed") == "ERROR payment crashed"
    assert xml_safe("a\x00b\x07c\x0bd\x1be\x1ff\ud800g\ufffeh\uffffi") == "a b c d e f g h i"
    assert xml_safe("tab\tnew\nline\r\n é🔥 \x7f") == "tab\tnew\nline\r\n é🔥 \x7f"
