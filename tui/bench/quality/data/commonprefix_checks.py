"""Checks for commonprefix.py; expected values recorded from the untouched function."""

from subject import commonprefix


def test_strings():
    assert commonprefix([]) == ''
    assert commonprefix(['/usr/lib', '/usr/local']) == '/usr/l'
    assert commonprefix(['abc', 'abd', 'ab']) == 'ab'
    assert commonprefix(['same', 'same']) == 'same'
    assert commonprefix(['x', 'y']) == ''
    assert commonprefix(['only']) == 'only'
    assert commonprefix(['interspecies', 'interstellar', 'interstate']) == 'inters'


def test_sequences():
    assert commonprefix([['a', 'b', 'c'], ['a', 'b', 'd']]) == ['a', 'b']
    assert commonprefix([('a', 'b'), ('a', 'c')]) == ('a',)
    assert commonprefix([b'/a/b', b'/a/c']) == b'/a/'
