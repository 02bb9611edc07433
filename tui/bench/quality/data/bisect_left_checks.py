"""Checks for bisect_left.py; expected values recorded from the untouched function."""

from helpers import raises
from subject import bisect_left


def test_basic():
    assert bisect_left([1, 2, 2, 3], 2) == 1
    assert bisect_left([1, 2, 2, 3], 4) == 4
    assert bisect_left([1, 2, 2, 3], 0) == 0
    assert bisect_left([], 5) == 0
    assert bisect_left([1, 3, 5, 7, 9], 6) == 3
    assert bisect_left([1, 3, 5, 7, 9], 5) == 2
    assert bisect_left([1, 3, 5, 7, 9], 9) == 4
    assert bisect_left(list(range(100)), 37) == 37


def test_bounds():
    assert bisect_left([1, 2, 2, 2, 3], 2, 2) == 2
    assert bisect_left([1, 2, 3, 4, 5], 5, 0, 3) == 3
    assert bisect_left([1, 2, 3, 4, 5], 0, 2) == 2
    assert bisect_left([5, 6], 1, hi=0) == 0


def test_key():
    assert bisect_left([(1, 'a'), (2, 'b'), (3, 'c')], 2, key=lambda p: p[0]) == 1
    assert bisect_left(['a', 'bb', 'ccc'], 3, key=len) == 2
    assert bisect_left(['a', 'bb', 'ccc'], 9, key=len) == 3
    assert bisect_left([(1, 'x'), (1, 'y'), (4, 'z')], 1, key=lambda p: p[0]) == 0


def test_errors():
    assert raises(ValueError, lambda: bisect_left([1], 1, -1))
