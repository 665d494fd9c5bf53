"""ArgoSettings: TPV-style string params parse, bad values name param/value/expected form."""

from __future__ import annotations

import json
import re
from dataclasses import fields

import pytest

from galaxy_argo.core.errors import SettingsError
from galaxy_argo.core.settings import (
    ArgoSettings,
    CleanupPolicy,
    ImagePullPolicy,
    MetadataMode,
    PodGCStrategy,
    params_table_markdown,
    parse_memory_mib,
)
from tests.conftest import ROOT


def test_defaults_are_valid_and_round_trip_through_their_own_parsers() -> None:
    defaults = ArgoSettings()
    for f in fields(ArgoSettings):
        value = getattr(defaults, f.name)
        shown = f.metadata["shown"] or (value.value if hasattr(value, "value") else value)
        if isinstance(shown, dict | list):
            shown = json.dumps(shown)
        elif shown is None:
            shown = ""
        assert f.metadata["parse"](shown) == value, f.name
        assert f.metadata["help"], f"{f.name} has no help text"


def test_tpv_style_strings_are_parsed() -> None:
    # TPV renders every param as a string: cores/mem/gpus come from its {cores} {mem} {gpus}.
    settings = ArgoSettings.from_params(
        {
            "cores": "2",
            "memory": "7.6",
            "gpus": "1",
            "walltime": "1-02:03:04",
            "retry_limit": "0",
            "argo_verify_tls": "False",
            "node_selector": "pool=batch, zone=a",
            "tolerations": '[{"key": "gpu", "operator": "Exists"}]',
            "affinity": "nodeAffinity: {}",
            "cleanup": "ALWAYS",
            "metadata": "local",
            "pod_gc": "onpodcompletion",
            "image_pull_policy": "Always",
            "ttl_after_success": "60",
        }
    )
    assert settings.cores == 2.0
    assert settings.memory == round(7.6 * 1024)
    assert settings.gpus == 1
    assert settings.walltime == ((24 + 2) * 60 + 3) * 60 + 4
    assert settings.retry_limit == 0
    assert settings.argo_verify_tls is False
    assert settings.node_selector == {"pool": "batch", "zone": "a"}
    assert settings.tolerations == [{"key": "gpu", "operator": "Exists"}]
    assert settings.affinity == {"nodeAffinity": {}}
    assert settings.cleanup is CleanupPolicy.ALWAYS
    assert settings.metadata is MetadataMode.LOCAL
    assert settings.pod_gc is PodGCStrategy.ON_POD_COMPLETION
    assert settings.image_pull_policy is ImagePullPolicy.ALWAYS
    assert settings.ttl_after_success == 60


def test_reference_data_as_tpv_string_or_mapping() -> None:
    as_string = ArgoSettings.from_params(
        {"reference_data": "/cvmfs/data.galaxyproject.org/=reference/cvmfs, /data/genomes=reference/genomes/"}
    )
    assert as_string.reference_data == {
        "/cvmfs/data.galaxyproject.org": "reference/cvmfs",
        "/data/genomes": "reference/genomes",
    }
    as_mapping = ArgoSettings.from_params({"reference_data": {"/data/genomes": "reference/genomes"}})
    assert as_mapping.reference_data == {"/data/genomes": "reference/genomes"}


def test_yaml_typed_values_are_parsed_too() -> None:
    settings = ArgoSettings.from_params(
        {"cores": 4, "memory": 16, "argo_verify_tls": False, "node_selector": {"a": "b"}, "walltime": 3600}
    )
    assert (settings.cores, settings.memory, settings.argo_verify_tls) == (4.0, 16384, False)
    assert settings.node_selector == {"a": "b"} and settings.walltime == 3600


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("4", 4096),
        ("0.5", 512),
        ("8Gi", 8192),
        ("512Mi", 512),
        ("1G", 954),
        ("2048MB", 2048),
        ("1Ti", 1048576),
    ],
)
def test_memory_forms(text: str, mib: int) -> None:
    assert parse_memory_mib(text) == mib


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("retry_limit", "many", "a whole number from 0 to 20"),
        ("retry_limit", "21", "a whole number from 0 to 20"),
        ("cores", "0", "a number of cores from 0.001 to 4096"),
        ("cores", "two", "a number of cores > 0"),
        ("memory", "lots", "memory as GiB"),
        ("memory", "4Qi", "memory with a unit"),
        ("walltime", "2 hours", "seconds (e.g. 3600) or [D-]HH:MM:SS"),
        ("namespace", "Galaxy_NS", "a DNS-1123 label"),
        ("instance", "a-very-long-galaxy-instance-name", "at most 20 characters"),
        ("bucket", "B", "an S3 bucket name"),
        ("key_prefix", "a/../b", "an object key prefix"),
        ("argo_server_url", "argo:2746", "an http:// or https:// URL"),
        ("argo_verify_tls", "maybe", "true or false"),
        ("cleanup", "sometimes", "one of always, onsuccess, never"),
        ("pod_gc", "x", "one of OnPodCompletion, OnPodSuccess"),
        ("node_selector", "[1, 2]", "`k=v,k2=v2` or a JSON/YAML mapping of strings"),
        ("tolerations", '{"key": "x"}', "a JSON/YAML list of Kubernetes tolerations"),
        ("affinity", "[not, a, mapping]", "a JSON/YAML Kubernetes affinity mapping"),
        ("ephemeral_storage", "big", "a Kubernetes quantity"),
        ("gpu_resource_name", "nvidia gpu", "an extended resource name"),
        ("artifact_repository_ref", "a/b/c", "KEY or CONFIGMAP/KEY"),
        ("gpus", "-1", "a whole number from 0 to 64"),
        ("reference_data", "data=refs", "'data' is not an absolute, normalised directory"),
        ("reference_data", "/=refs", "'/' is not an absolute"),
        ("reference_data", "/data/../etc=refs", "'/data/../etc' is not an absolute"),
        ("reference_data", "/data/my genomes=refs", "has characters other than"),
        ("reference_data", "/data=../refs", "for '/data': an object key prefix"),
        ("reference_data", "[/data]", "`/host/dir=key/prefix` pairs"),
    ],
)
def test_bad_values_name_param_value_and_form(param: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        ArgoSettings.from_params({param: value})
    assert err.value.param == param
    assert err.value.value == value
    assert expected in err.value.expected
    assert str(err.value).startswith(f"destination param {param!r} = {value!r}: expected ")


def test_secret_values_never_appear_in_errors_or_repr() -> None:
    settings = ArgoSettings.from_params({"argo_token": "tok-MARKER", "s3_secret_access_key": "sk-MARKER"})
    assert "MARKER" not in repr(settings)
    assert sorted(settings.secrets()) == ["sk-MARKER", "tok-MARKER"]
    with pytest.raises(SettingsError) as err:
        ArgoSettings.from_params({"argo_token": ["MARKER-list"]})
    assert "MARKER" not in str(err.value) and "<redacted>" in str(err.value)


def test_typo_of_a_known_param_is_an_error_other_params_belong_to_galaxy() -> None:
    with pytest.raises(SettingsError, match="did you mean 'namespace'"):
        ArgoSettings.from_params({"namepsace": "x"})
    with pytest.raises(SettingsError, match="did you mean 'retry_limit'"):
        ArgoSettings.from_params({"retry_limt": "1"})
    # Galaxy's own generic destination params share the dict and are ignored.
    settings = ArgoSettings.from_params(
        {"docker_enabled": "true", "require_container": "true", "tmp_dir": "True"}
    )
    assert settings == ArgoSettings()


def test_with_params_overrides_only_what_is_given() -> None:
    base = ArgoSettings.from_params({"namespace": "ns1", "retry_limit": "5"})
    changed = base.with_params({"retry_limit": "1"})
    assert (changed.namespace, changed.retry_limit) == ("ns1", 1)


def test_readme_params_table_is_generated_from_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- params:start -->\n(.*?)<!-- params:end -->", readme, re.S)
    assert match, "README.md lacks the params table markers"
    assert match.group(1) == params_table_markdown(), "README params table drifted: regenerate it"
    for f in fields(ArgoSettings):
        assert f"| `{f.name}` |" in match.group(1)


def test_the_readme_tpv_destination_as_tpv_renders_it() -> None:
    """README's TPV example for bwa_mem2 (cores 8, mem cores * 3.8), after TPV's f-strings."""
    rendered = {
        "cores": "8",
        "memory": str(8 * 3.8),
        "gpus": "0",
        "node_selector": "pool=batch",
        "walltime": "12:00:00",
        "ephemeral_storage": "100Gi",
    }
    settings = ArgoSettings.from_params(rendered)
    assert (settings.cores, settings.memory, settings.gpus) == (8.0, round(30.4 * 1024), 0)
    assert settings.node_selector == {"pool": "batch"}
    assert settings.walltime == 12 * 3600 and settings.ephemeral_storage == "100Gi"
