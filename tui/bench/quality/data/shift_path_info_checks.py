"""Checks for shift_path_info.py; expected values recorded from the untouched function."""

from subject import shift_path_info


def shift(script_name, path_info):
    environ = {'SCRIPT_NAME': script_name, 'PATH_INFO': path_info}
    name = shift_path_info(environ)
    return name, environ['SCRIPT_NAME'], environ['PATH_INFO']


def test_shift():
    assert shift('', '/a/b') == ('a', '/a', '/b')
    assert shift('/x', '/a/b/c') == ('a', '/x/a', '/b/c')
    assert shift('/x', '/') == ('', '/x/', '')
    assert shift('', '/a/./b') == ('a', '/a', '/b')
    assert shift('', '/a//b') == ('a', '/a', '/b')
    assert shift('/x/', '/y') == ('y', '/x/y', '')
    assert shift('', '/.') == (None, '', '')
    assert shift('/app', '/a/') == ('a', '/app/a', '/')
    assert shift('/x', '/y/../z') == ('y', '/x/y', '/../z')


def test_empty():
    assert shift_path_info({'SCRIPT_NAME': '/x'}) is None
    assert shift('/x', '') == (None, '/x', '')
