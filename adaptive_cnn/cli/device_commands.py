"""``acnn devices``: the device profiles acnn knows, with their power model and links."""

from __future__ import annotations

import argparse
import json

from adaptive_cnn.tables import format_table


def add_devices_parser(commands) -> None:
    parser = commands.add_parser(
        "devices",
        help="list the device profiles (cores, runtime, power model, memory limit, links)",
        description=(
            "List every device profile: the shipped ones and the user's, which override a "
            "shipped profile of the same name. Power is in watts (W); 'estimated' marks a "
            "declared idle/active model instead of a sensor. Links are listed with uplink "
            "and downlink throughput (Mbit/s), radio power (W, W per Mbit/s), tail energy "
            "(mJ) and round-trip time (ms)."
        ),
    )
    parser.add_argument(
        "--devices-dir",
        metavar="DIR",
        default=None,
        help="folder of the user's profiles, NAME.yaml (default: $ACNN_DEVICES_DIR, "
        "else ~/.config/acnn/devices)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list with one object per profile"
    )
    parser.set_defaults(run=run_devices)


def run_devices(args: argparse.Namespace) -> int:
    from energy_models.devices import list_devices, load_device, load_links

    profiles = [
        load_device(name, user_dir=args.devices_dir)
        for name in list_devices(user_dir=args.devices_dir)
    ]
    if args.json:
        print(json.dumps([profile.to_dict() for profile in profiles], indent=2))
        return 0
    print(format_table(_DEVICE_HEADERS, [_device_row(p) for p in profiles]))
    print()
    print(format_table(_LINK_HEADERS, _link_rows(profiles, load_links())))
    if any(p.estimated for p in profiles):
        print("\nestimated: power from the profile's declared idle/active watts, not a sensor")
    print("sources of every figure: acnn devices --json")
    return 0


_DEVICE_HEADERS = ("device", "cores/threads", "runtime", "power", "memory limit", "links")
_LINK_HEADERS = (
    "link",
    "up Mbit/s",
    "down Mbit/s",
    "base W",
    "W per Mbit/s",
    "tail mJ",
    "tail share",
    "RTT ms",
)


def _device_row(profile) -> tuple:
    from energy_models.units import format_bytes

    power = profile.power
    watts = f"{power.source}: {power.idle_w:g}/{power.active_w:g} W idle/active"
    if profile.estimated:
        watts += " (estimated)"
    elif power.source == "auto":
        watts = f"auto: a sensor, else {power.idle_w:g}/{power.active_w:g} W (estimated)"
    else:
        watts = f"{power.source}, else {power.idle_w:g}/{power.active_w:g} W (estimated)"
    return (
        profile.name,
        f"{profile.cores}/{profile.threads}",
        profile.runtime,
        watts,
        format_bytes(profile.memory_limit_bytes),
        ", ".join(profile.links) or "-",
    )


def _link_rows(profiles, catalog) -> list[tuple]:
    """The shipped links, then each device's link that differs, named ``link (device)``."""
    rows = [_link_row(name, link) for name, link in catalog.items()]
    for profile in profiles:
        for name, link in profile.links.items():
            if catalog.get(name) != link:
                rows.append(_link_row(f"{name} ({profile.name})", link))
    return rows


def _link_row(label: str, link) -> tuple:
    numbers = (link.uplink_mbps, link.downlink_mbps, link.base_power_w, link.power_per_mbps_w)
    numbers += (link.tail_energy_mj, link.tail_share, link.rtt_ms)
    return (label, *(f"{value:g}" for value in numbers))
