"""`qcode bench`: the drafting benchmark users run (cli), its tasks, and the lossless check it reports.

Device scripts, simulators and research tools stay in the repository's bench/, outside the wheel.
"""
