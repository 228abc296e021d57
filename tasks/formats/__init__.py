"""Readers of the benchmarks' native annotation formats.

Every reader raises :class:`tasks.base.TaskDataError` naming the file, the line and the field.
"""
