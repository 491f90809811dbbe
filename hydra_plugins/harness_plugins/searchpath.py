"""Hydra discovers this plugin in the `hydra_plugins` namespace package. It appends the `conf/`
folder of every installed package that registers a harness method or task through entry points,
so `python -m harness method=<their method>` composes their YAML with no edit to this repo."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class HarnessPluginSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from core.registry import plugin_config_packages

        for package in plugin_config_packages():
            search_path.append(provider=f"harness-plugin:{package}", path=f"pkg://{package}/conf")
