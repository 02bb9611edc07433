"""Checks for relpath.py; expected values recorded from the untouched function."""

from helpers import raises
from subject import relpath


def test_paths():
    assert relpath('/a/b/c', '/a') == 'b/c'
    assert relpath('/a', '/a/b/c') == '../..'
    assert relpath('/a/b', '/a/b') == '.'
    assert relpath('/x/y', '/a/b') == '../../x/y'
    assert relpath('/usr/lib/python', '/usr/local/bin') == '../../lib/python'
    assert relpath('/a/b/', '/a') == 'b'


def test_bytes():
    assert relpath(b'/a/b', b'/a') == b'b'
    assert relpath(b'/a', b'/a/b') == b'..'


def test_errors():
    assert raises(ValueError, lambda: relpath(''))
