"""Checks for rgb_to_hls.py; expected values recorded from the untouched function."""

from helpers import close
from subject import rgb_to_hls


def test_grey():
    assert close(rgb_to_hls(0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert close(rgb_to_hls(1.0, 1.0, 1.0), (0.0, 1.0, 0.0))
    assert close(rgb_to_hls(0.5, 0.5, 0.5), (0.0, 0.5, 0.0))


def test_colors():
    assert close(rgb_to_hls(1.0, 0.0, 0.0), (0.0, 0.5, 1.0))
    assert close(rgb_to_hls(0.0, 1.0, 0.0), (0.3333333333333333, 0.5, 1.0))
    assert close(rgb_to_hls(0.0, 0.0, 1.0), (0.6666666666666666, 0.5, 1.0))
    assert close(rgb_to_hls(0.2, 0.4, 0.4), (0.5, 0.30000000000000004, 0.3333333333333333))
    assert close(rgb_to_hls(0.9, 0.3, 0.6), (0.9166666666666666, 0.6, 0.7500000000000001))
    assert close(rgb_to_hls(0.5, 0.5, 0.2), (0.16666666666666666, 0.35, 0.4285714285714286))
    assert close(rgb_to_hls(0.8, 0.7, 0.75), (0.9166666666666666, 0.75, 0.20000000000000018))
    assert close(rgb_to_hls(0.1, 0.9, 0.1), (0.3333333333333333, 0.5, 0.8))
    assert close(rgb_to_hls(0.3, 0.2, 0.9), (0.6904761904761904, 0.55, 0.7777777777777776))
    assert close(rgb_to_hls(1.0, 0.6, 0.0), (0.09999999999999999, 0.5, 1.0))
