"""Checks for get_close_matches.py; expected values recorded from the untouched function."""

import keyword

from helpers import raises
from subject import get_close_matches


def test_matches():
    assert get_close_matches('appel', ['ape', 'apple', 'peach', 'puppy']) == ['apple', 'ape']
    assert get_close_matches('wheel', keyword.kwlist) == ['while']
    assert get_close_matches('Apple', keyword.kwlist) == []
    assert get_close_matches('accept', keyword.kwlist) == ['except']
    assert get_close_matches('hello', ['hallo', 'hullo', 'help', 'world'], n=2) == ['hullo', 'hallo']
    assert get_close_matches('abc', ['abc', 'abd', 'xyz'], cutoff=0.9) == ['abc']
    assert get_close_matches('abc', ['abc', 'abd', 'xyz'], cutoff=0.0) == ['abc', 'abd', 'xyz']
    assert get_close_matches('x', []) == []


def test_errors():
    assert raises(ValueError, lambda: get_close_matches('a', ['a'], n=0))
    assert raises(ValueError, lambda: get_close_matches('a', ['a'], cutoff=1.5))
