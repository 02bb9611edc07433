"""Checks for encode_basestring_ascii.py; expected values recorded from the untouched function."""

from subject import py_encode_basestring_ascii


def test_ascii():
    assert py_encode_basestring_ascii('abc') == '"abc"'
    assert py_encode_basestring_ascii('') == '""'
    assert py_encode_basestring_ascii('a"b') == '"a\\"b"'
    assert py_encode_basestring_ascii('back\\slash') == '"back\\\\slash"'
    assert py_encode_basestring_ascii('tab\there') == '"tab\\there"'
    assert py_encode_basestring_ascii('line\nbreak') == '"line\\nbreak"'
    assert py_encode_basestring_ascii('\x01\x1f') == '"\\u0001\\u001f"'


def test_unicode():
    assert py_encode_basestring_ascii('caf\u00e9') == '"caf\\u00e9"'
    assert py_encode_basestring_ascii('\u20ac5') == '"\\u20ac5"'
    assert py_encode_basestring_ascii('\U0001f600') == '"\\ud83d\\ude00"'
    assert py_encode_basestring_ascii('\U00010000\U0010ffff') == '"\\ud800\\udc00\\udbff\\udfff"'
