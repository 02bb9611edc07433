"""Checks for nti.py; expected values recorded from the untouched function."""

from helpers import raises
from subject import InvalidHeaderError, nti


def test_octal():
    assert nti(b'0000017\x00') == 15
    assert nti(b'       \x00') == 0
    assert nti(b'0000000\x00') == 0
    assert nti(b'777\x00junk') == 511
    assert nti(b' 0000644 ') == 420
    assert nti(b'00000001750\x00') == 1000


def test_base256():
    assert nti(b'\x80\x00\x00\x00\x00\x00\x01\x00') == 256
    assert nti(b'\xff\xff\xff\xff\xff\xff\xff\xff') == -1
    assert nti(b'\xff\xff\xff\xff\xff\xff\xff\xfe') == -2
    assert nti(b'\x80' + bytes(6) + b'\x05') == 5
    assert nti(b'\x80\x01\x02') == 258


def test_errors():
    assert raises(InvalidHeaderError, lambda: nti(b'abc\x00'))
    assert raises(InvalidHeaderError, lambda: nti(b'9\x00'))
