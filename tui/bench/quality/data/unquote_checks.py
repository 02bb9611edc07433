"""Checks for unquote.py; expected values recorded from the untouched function."""

from subject import _unquote


def test_plain():
    assert _unquote(None) is None
    assert _unquote('a') == 'a'
    assert _unquote('abc"') == 'abc"'
    assert _unquote('"abc') == '"abc'
    assert _unquote('"abc"') == 'abc'
    assert _unquote('""') == ''


def test_escapes():
    assert _unquote('"a\\"b"') == 'a"b'
    assert _unquote('"\\012x"') == '\nx'
    assert _unquote('"a\\\\b"') == 'a\\b'
    assert _unquote('"\\101\\102"') == 'AB'
    assert _unquote('"x\\"\\101y"') == 'x"Ay'
    assert _unquote('"\\101\\"z"') == 'A"z'
    assert _unquote('"tail\\""') == 'tail"'
