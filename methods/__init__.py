"""Editing methods. Each method is one class (a subclass of `methods.base.Method`) and one YAML
file in `conf/method/`, registered through the `harness.methods` entry-point group."""
