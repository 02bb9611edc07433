"""Checks for siftup.py; expected values recorded from the untouched function."""

from subject import _siftup, heapify, heappop, heappush


def heapsort(items):
    heap = []
    for item in items:
        heappush(heap, item)
    return [heappop(heap) for _ in range(len(heap))]


def heapified(items):
    heap = list(items)
    heapify(heap)
    return heap


def sifted(heap, pos):
    heap = list(heap)
    _siftup(heap, pos)
    return heap


def test_sort():
    assert heapsort([5, 1, 9, 3, 7, 2, 8]) == [1, 2, 3, 5, 7, 8, 9]
    assert heapsort([3, 3, 1, 2, 1]) == [1, 1, 2, 3, 3]
    assert heapsort([]) == []
    assert heapsort(list(range(20, 0, -1))) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    assert heapsort(['pear', 'apple', 'fig']) == ['apple', 'fig', 'pear']


def test_heapify():
    assert heapified([9, 8, 7, 6, 5, 4, 3, 2, 1]) == [1, 2, 3, 6, 5, 4, 7, 8, 9]
    assert heapified([1, 2, 3]) == [1, 2, 3]
    assert heapified([2, 1]) == [1, 2]
    assert heapified([5, 3, 8, 1, 9, 2]) == [1, 3, 2, 5, 9, 8]


def test_siftup():
    assert sifted([9, 1, 2, 3, 4], 0) == [1, 3, 2, 9, 4]
    assert sifted([1, 9, 2, 3, 4, 5, 6], 1) == [1, 3, 2, 9, 4, 5, 6]
    assert sifted([7, 2, 1], 0) == [1, 2, 7]
