"""Engine defaults are the engine's, not the user's: a spec leaves them out, and the comparison
after a migration does not count them as differences."""

from __future__ import annotations

from typing import Any

from layerferry.workflows.normalize import compare, normalize
from layerferry.workflows.spec import ContainerSpec

MASKED_20 = ["/proc/kcore", "/proc/keys"]
MASKED_26 = [*MASKED_20, "/sys/devices/virtual/powercap"]


def _defaults(masked: list[str], network: str) -> dict[str, Any]:
    return {
        "MaskedPaths": masked,
        "ReadonlyPaths": ["/proc/sys"],
        "IpcMode": "private",
        "CgroupnsMode": "host",
        "Runtime": "runc",
        "ShmSize": 67108864,
        "NetworkMode": network,
        "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
    }


def _inspect(**host: Any) -> dict[str, Any]:
    return {
        "Id": "c" * 64,
        "Name": "/web",
        "Image": "sha256:" + "1" * 64,
        "Config": {"Image": "web", "Hostname": "c" * 12},
        "HostConfig": host,
    }


def test_values_equal_to_the_engines_defaults_do_not_travel() -> None:
    inspect = _inspect(
        **{
            **_defaults(MASKED_20, "default"),
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        },
        Memory=64,
    )
    spec = ContainerSpec.from_inspect(inspect, {}, engine_defaults=_defaults(MASKED_20, "default"))
    assert spec.host_config == {"Memory": 64}
    assert "MaskedPaths" not in spec.create_body("web")["HostConfig"]


def test_what_the_user_chose_travels_even_where_defaults_are() -> None:
    chosen = {
        "IpcMode": "shareable",
        "ShmSize": 33554432,
        "CgroupnsMode": "private",
        "SecurityOpt": ["systempaths=unconfined"],
        "NetworkMode": "bridge",  # --network bridge: the default network, said either way
    }
    inspect = _inspect(**{**_defaults(MASKED_20, "default"), **chosen})
    spec = ContainerSpec.from_inspect(inspect, {}, engine_defaults=_defaults(MASKED_20, "default"))
    assert spec.host_config == {k: v for k, v in chosen.items() if k != "NetworkMode"}


def test_without_known_defaults_the_spec_is_as_before() -> None:
    inspect = _inspect(**_defaults(MASKED_20, "default"))
    spec = ContainerSpec.from_inspect(inspect, {})
    assert spec.host_config["MaskedPaths"] == MASKED_20


def test_each_side_is_compared_without_its_own_engines_defaults() -> None:
    source = normalize(
        _inspect(**_defaults(MASKED_20, "default"), Memory=64), _defaults(MASKED_20, "default")
    )
    target = normalize(
        _inspect(**_defaults(MASKED_26, "bridge"), Memory=64), _defaults(MASKED_26, "bridge")
    )
    count, differences = compare(source, target)
    assert differences == [] and count == len(source) == 2  # Name, HostConfig.Memory


def test_a_record_with_the_defaults_in_it_equals_the_same_engine() -> None:
    """A snapshot written before defaults were left out names them; the same engine's own
    defaults are what the recreated container gets, so they are equal."""
    old = normalize(_inspect(**_defaults(MASKED_20, "default")))
    defaults = _defaults(MASKED_20, "default")
    target = normalize(_inspect(**defaults), defaults)
    _, differences = compare(old, target, target_defaults=defaults)
    assert differences == []
