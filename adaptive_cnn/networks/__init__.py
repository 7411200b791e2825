"""CNN families, their search spaces and builders.

Importing this package registers the built-in families ``conv``, ``mbconv`` and ``mlp``.
"""

from adaptive_cnn.networks.cost import arch_cost, describe_arch
from adaptive_cnn.networks.dimensions import Categorical, Dimension, Integer, Real
from adaptive_cnn.networks.mbconv import MBConvArch, MBConvFamily, MBLayer
from adaptive_cnn.networks.mlp import MLPArch, MLPFamily
from adaptive_cnn.networks.plain_conv import ConvArch, ConvBlock, PlainConvFamily
from adaptive_cnn.networks.registry import (
    Arch,
    NetworkFamily,
    Part,
    create_network,
    get_family,
    list_networks,
    parse_arch,
    part_key,
    register_network,
)

__all__ = [
    "Arch",
    "Categorical",
    "ConvArch",
    "ConvBlock",
    "Dimension",
    "Integer",
    "MBConvArch",
    "MBConvFamily",
    "MBLayer",
    "MLPArch",
    "MLPFamily",
    "NetworkFamily",
    "Part",
    "PlainConvFamily",
    "Real",
    "arch_cost",
    "create_network",
    "describe_arch",
    "get_family",
    "list_networks",
    "parse_arch",
    "part_key",
    "register_network",
]
