"""Checks for dedent.py; expected values recorded from the untouched function."""

from subject import dedent


def test_common():
    assert dedent('  a\n  b\n') == 'a\nb\n'
    assert dedent('    a\n  b\n') == '  a\nb\n'
    assert dedent('\ta\n\t\tb\n') == 'a\n\tb\n'
    assert dedent('   x\n   y\n') == 'x\ny\n'
    assert dedent('  hello\n    world\n') == 'hello\n  world\n'
    assert dedent(' \t a\n \t b\n') == 'a\nb\n'


def test_mixed():
    assert dedent('  a\n\tb\n') == '  a\n\tb\n'
    assert dedent('  a\n \tb\n') == ' a\n\tb\n'
    assert dedent('    a\n  \tb\n') == '  a\n\tb\n'


def test_blank():
    assert dedent('  a\n   \n  b') == 'a\n\nb'
    assert dedent('no indent\n  x') == 'no indent\n  x'
    assert dedent('') == ''
    assert dedent('  a\n\t\n  b\n') == 'a\n\nb\n'
