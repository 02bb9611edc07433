"""Checks for unhex.py; expected values recorded from the untouched function."""

from helpers import raises
from subject import unhex


def test_digits():
    assert unhex(b'ff') == 255
    assert unhex(b'0') == 0
    assert unhex(b'1A') == 26
    assert unhex(b'deadBEEF') == 3735928559
    assert unhex(b'') == 0
    assert unhex(b'10') == 16
    assert unhex(b'7f') == 127
    assert unhex(b'C3a9') == 50089
    assert unhex(b'9') == 9


def test_errors():
    assert raises(AssertionError, lambda: unhex(b'g'))
