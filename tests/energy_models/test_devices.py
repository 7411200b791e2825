"""Device profiles: shipped ones load, user files override, links merge, errors are clear."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from energy_models import devices
from energy_models.devices import (
    DEVICES_DIR_ENV,
    POWER_EXTRA_KEYS,
    RUNTIMES,
    DeviceProfile,
    PowerSpec,
    list_devices,
    load_device,
    load_links,
)
from energy_models.errors import EnergyModelError

SHIPPED = ("jetson-nano", "local", "phone")

PROFILE = {
    "description": "a test board",
    "cpu": "2x test core",
    "cores": 2,
    "threads": 1,
    "memory_limit": "64MiB",
    "runtime": "torch",
    "power": {"source": "declared", "idle_w": 1.0, "active_w": "2500mW", "note": "made up"},
    "links": ["wifi"],
    "sources": ["none: a test"],
}


@pytest.fixture(autouse=True)
def no_user_profiles(tmp_path, monkeypatch):
    """Each test starts with an empty user folder, whatever the machine has."""
    empty = tmp_path / "no-user-profiles"
    empty.mkdir()
    monkeypatch.setenv(DEVICES_DIR_ENV, str(empty))


def write_profile(folder, name, data) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(data, sort_keys=False) if isinstance(data, dict) else data, encoding="utf-8"
    )
    return str(path)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_with_sources(name):
    profile = load_device(name)
    assert profile.name == name
    assert profile.sources and all(text.strip() for text in profile.sources)
    assert profile.cores >= 1 and profile.threads >= 1 and profile.memory_limit_bytes > 0
    assert profile.runtime in RUNTIMES
    assert profile.links and set(profile.links) <= set(load_links())
    assert 0 < profile.power.idle_w < profile.power.active_w
    assert profile.power.note
    json.dumps(profile.to_dict())  # JSON-able


def test_shipped_profiles_are_listed():
    assert set(SHIPPED) <= set(list_devices())


def test_shipped_profile_figures():
    phone, nano, local = load_device("phone"), load_device("jetson-nano"), load_device("local")
    assert phone.estimated and phone.power.source == "declared"
    assert phone.memory_limit_bytes == 256 * 2**20
    assert set(phone.links) == {"wifi", "lte", "3g"}
    assert nano.power.source == "jetson-ina" and not nano.estimated
    assert nano.power.active_w == 10.0  # the module's 10 W (MAXN) power mode
    assert (nano.cores, nano.memory_limit_bytes) == (4, 2**30)
    assert local.power.source == "auto" and local.runtime == "onnxruntime"
    assert nano.runtime == "onnxruntime" and phone.runtime == "torchscript"


def test_auto_cores_and_threads_follow_the_cpu_count(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    local = load_device("local")
    assert (local.cores, local.threads) == (7, 7)


def test_auto_threads_equal_explicit_cores(tmp_path):
    path = write_profile(tmp_path, "board", {**PROFILE, "cores": 3, "threads": "auto"})
    assert load_device(path).threads == 3


def test_profile_fields_from_yaml(tmp_path):
    profile = load_device(write_profile(tmp_path, "board", PROFILE))
    assert profile.name == "board"  # from the file name
    assert profile.memory_limit_bytes == 64 * 2**20
    assert profile.power.active_w == 2.5  # "2500mW"
    assert profile.estimated
    assert list(profile.links) == ["wifi"] and profile.link("wifi") == load_links()["wifi"]


def test_user_dir_profile_overrides_the_shipped_one(tmp_path):
    user = tmp_path / "mine"
    write_profile(user, "phone", {**PROFILE, "description": "my own phone"})
    write_profile(user, "board", PROFILE)
    assert load_device("phone", user_dir=user).description == "my own phone"
    assert load_device("phone").description != "my own phone"  # env folder is empty
    assert set(list_devices(user_dir=user)) == set(SHIPPED) | {"board"}


def test_environment_variable_names_the_user_dir(tmp_path, monkeypatch):
    user = tmp_path / "env"
    write_profile(user, "local", {**PROFILE, "description": "from the env folder"})
    monkeypatch.setenv(DEVICES_DIR_ENV, str(user))
    assert load_device("local").description == "from the env folder"


def test_missing_explicit_user_dir_is_an_error(tmp_path):
    with pytest.raises(EnergyModelError, match="does not exist"):
        list_devices(user_dir=tmp_path / "absent")


def test_missing_default_user_dir_is_fine(monkeypatch, tmp_path):
    monkeypatch.delenv(DEVICES_DIR_ENV)
    monkeypatch.setattr(devices, "DEFAULT_USER_DIR", tmp_path / "absent")
    assert set(SHIPPED) <= set(list_devices())


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(EnergyModelError, match="unknown device 'toaster'.*jetson-nano.*phone"):
        load_device("toaster")
    with pytest.raises(EnergyModelError, match="not found"):
        load_device("no/such/file.yaml")


def test_link_overrides_merge_over_the_shipped_numbers(tmp_path):
    data = {**PROFILE, "links": {"wifi": {"rtt_ms": 5}, "lte": None}}
    profile = load_device(write_profile(tmp_path, "board", data))
    shipped = load_links()
    assert list(profile.links) == ["wifi", "lte"]
    assert profile.link("wifi").rtt_ms == 5.0
    assert profile.link("wifi").uplink_mbps == shipped["wifi"].uplink_mbps
    assert "rtt_ms" in profile.link("wifi").source and "Huang" in profile.link("wifi").source
    assert profile.link("lte") == shipped["lte"]


def test_a_profile_may_define_its_own_link(tmp_path):
    custom = {
        "uplink_mbps": 50,
        "downlink_mbps": 50,
        "base_power_w": 0.2,
        "power_per_mbps_w": 0.01,
        "tail_energy_mj": 1,
        "rtt_ms": 3,
    }
    profile = load_device(write_profile(tmp_path, "board", {**PROFILE, "links": {"lab": custom}}))
    assert profile.link("lab").uplink_mbps == 50.0


def test_omitted_links_mean_every_shipped_link(tmp_path):
    data = {k: v for k, v in PROFILE.items() if k != "links"}
    assert set(load_device(write_profile(tmp_path, "board", data)).links) == set(load_links())


def test_device_with_a_user_links_file(tmp_path):
    links_file = tmp_path / "links.yaml"
    links_file.write_text("wifi: {uplink_mbps: 40}\n")
    profile = load_device(write_profile(tmp_path, "board", PROFILE), links_path=links_file)
    assert profile.link("wifi").uplink_mbps == 40.0


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"colour": "red"}, r"board.yaml.*unknown key.*colour"),
        ({"links": ["wifi", "5g"]}, r"board.yaml.*unknown link '5g'.*wifi"),
        ({"links": ["none"]}, r"'none' is implicit"),
        ({"links": {"wifi": {"rtt": 3}}}, r"board.yaml.*unknown key.*rtt"),
        ({"links": {"wifi": {"rtt_ms": -3}}}, r"rtt_ms"),
        ({"cores": 0}, r"cores"),
        ({"threads": "many"}, r"threads"),
        ({"memory_limit": "lots"}, r"size"),
        ({"runtime": "tflite"}, r"runtime.*tflite"),
        ({"power": {"source": "guess", "idle_w": 1, "active_w": 2}}, r"power source 'guess'"),
        ({"power": {"source": "declared", "idle_w": 3, "active_w": 2}}, r"idle_w <= active_w"),
        ({"power": {"source": "declared", "idle_w": 1}}, r"missing active_w"),
        ({"power": {"source": "declared", "idle_w": 1, "active_w": 2, "rail": "x"}}, "rail"),
        ({"estimated": False}, r"contradicts"),
        ({"sources": [1, 2]}, r"sources"),
    ],
)
def test_bad_profiles_are_one_line_errors_naming_the_file(tmp_path, change, pattern):
    path = write_profile(tmp_path, "board", {**PROFILE, **change})
    with pytest.raises(EnergyModelError, match=pattern) as info:
        load_device(path)
    assert "\n" not in str(info.value) and "board.yaml" in str(info.value)


def test_missing_memory_limit_is_an_error(tmp_path):
    data = {k: v for k, v in PROFILE.items() if k != "memory_limit"}
    with pytest.raises(EnergyModelError, match="memory_limit"):
        load_device(write_profile(tmp_path, "board", data))


@pytest.mark.parametrize("text", ["cores: [1, 2\n", "a: b: c\n", "- just\n- a list\n"])
def test_malformed_yaml_is_one_line_naming_the_file(tmp_path, text):
    path = write_profile(tmp_path, "broken", text)
    with pytest.raises(EnergyModelError) as info:
        load_device(path)
    assert "broken.yaml" in str(info.value) and "\n" not in str(info.value)


def test_user_file_must_keep_its_name(tmp_path):
    write_profile(tmp_path / "mine", "phone", {**PROFILE, "name": "other"})
    with pytest.raises(EnergyModelError, match="declares name 'other'"):
        load_device("phone", user_dir=tmp_path / "mine")


def test_unknown_link_lists_the_devices_links():
    with pytest.raises(EnergyModelError, match=r"no link '5g'.*wifi, lte.*'none'"):
        load_device("jetson-nano").link("5g")


def test_to_dict_reads_back_to_an_equal_profile():
    for name in SHIPPED:
        profile = load_device(name)
        data = json.loads(json.dumps(profile.to_dict()))
        assert data["estimated"] == profile.estimated
        assert DeviceProfile.from_dict(data) == profile


def test_power_spec_to_dict_is_what_the_power_factory_takes():
    spec = PowerSpec.from_dict(
        {"source": "jetson-ina", "idle_w": 1.5, "active_w": 10, "note": "n", "rails": ["VDD_IN"]}
    )
    assert spec.to_dict() == {
        "source": "jetson-ina",
        "idle_w": 1.5,
        "active_w": 10.0,
        "note": "n",
        "rails": ["VDD_IN"],
    }
    assert not spec.source == "declared"


def test_keys_match_the_power_factory_and_runtimes():
    from energy_models.power import SOURCE_CHOICES, SPEC_KEYS
    from energy_models.runtimes import RUNTIMES as PROFILER_RUNTIMES

    assert {"source", "idle_w", "active_w", "note", *POWER_EXTRA_KEYS} == set(SPEC_KEYS)
    assert set(devices.POWER_SOURCES) == set(SOURCE_CHOICES)
    assert set(RUNTIMES) == set(PROFILER_RUNTIMES)
