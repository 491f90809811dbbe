"""Evaluation tasks. Each task is a class (subclass of `tasks.base.Task`) registered through the
`harness.tasks` entry-point group; suites in `conf/suite/` list task instances and their data."""
