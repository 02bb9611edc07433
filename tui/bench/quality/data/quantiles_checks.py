"""Checks for quantiles.py; expected values recorded from the untouched function."""

from helpers import close, raises
from subject import StatisticsError, quantiles


def test_exclusive():
    assert close(quantiles([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), [2.75, 5.5, 8.25])
    assert close(quantiles([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], n=10), [1.1, 2.2, 3.3, 4.4, 5.5, 6.6, 7.7, 8.8, 9.9])
    assert close(quantiles([1, 5], n=2), [3.0])
    assert close(quantiles(range(100), n=3), [32.666666666666664, 66.33333333333333])
    assert close(quantiles([1.5, 2.5, 10.0, 4.0], n=5), [1.5, 2.5, 4.0, 10.0])
    assert close(quantiles([7, 1], n=4), [-0.5, 4.0, 8.5])
    assert close(quantiles([4, 1, 3], n=1), [])


def test_inclusive():
    assert close(quantiles([10, 20], n=4, method='inclusive'), [12.5, 15.0, 17.5])
    assert close(quantiles([3, 1, 2], method='inclusive'), [1.5, 2.0, 2.5])
    assert close(quantiles(range(11), n=5, method='inclusive'), [2.0, 4.0, 6.0, 8.0])


def test_errors():
    assert raises(StatisticsError, lambda: quantiles([1], n=4))
    assert raises(StatisticsError, lambda: quantiles([1, 2], n=0))
    assert raises(ValueError, lambda: quantiles([1, 2, 3], method='bogus'))
