"""Checks for cleandoc.py; expected values recorded from the untouched function."""

from subject import cleandoc


def test_docs():
    assert cleandoc('Summary.\n\n    Body line.\n      Indented.\n    ') == 'Summary.\n\nBody line.\n  Indented.'
    assert cleandoc('   First\n   second') == 'First\nsecond'
    assert cleandoc('\n\n   text\n\n') == 'text'
    assert cleandoc('one line') == 'one line'
    assert cleandoc('a\n\tb\n\t  c') == 'a\nb\n  c'
    assert cleandoc('') == ''
    assert cleandoc('  x\n') == 'x'
    assert cleandoc('Title\n  one\n\n    two\n  three') == 'Title\none\n\n  two\nthree'
