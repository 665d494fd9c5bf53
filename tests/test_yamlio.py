"""Our YAML dumper: libyaml and pure-Python emit the same bytes; output reads back unchanged."""

from __future__ import annotations

import yaml

from galaxy_argo.core import yamlio
from galaxy_argo.core.yamlio import dump_yaml, dump_yaml_all, load_yaml
from tests.conftest import GOLDEN


class PurePythonDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True


PurePythonDumper.add_representer(str, yamlio._represent_str)


def test_libyaml_and_pure_python_dumpers_agree_on_every_golden_workflow() -> None:
    assert yamlio._KubeDumper.__mro__[1] is getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for path in sorted(GOLDEN.glob("*.yaml")):
        data = load_yaml(path.read_text())
        pure = yaml.dump(
            data,
            Dumper=PurePythonDumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=100,
        )
        assert dump_yaml(data) == pure, path.name


def test_round_trip_of_awkward_strings() -> None:
    data = {
        "a": "trailing space \nline",
        "b": "tab\there",
        "c": "ümlaut",
        "d": ["y", "on", "0x10", "1e3", ""],
    }
    assert load_yaml(dump_yaml(data)) == data
    assert list(yaml.safe_load_all(dump_yaml_all([data, data]))) == [data, data]
