"""DCMTK's transfer syntax options (-x= ... -xd to propose, +x= ... +xa to prefer) for argparse.

The flags, long names and help texts are DCMTK 3.6.7's (storescu, storescp, dcmqrscp,
findscu, movescu, getscu); what each one stands for is in ``pacsbox.syntaxes``. The chosen
option is stored as its long name without dashes (``args.propose == "propose-lossless"``,
``args.prefer == "prefer-lossless"``), the key of ``SCU_PROPOSALS`` / ``SCP_PREFERENCES``.
The options of one side are mutually exclusive: DCMTK 3.6.7 takes several without a word
(storescu -xs -xb runs), we refuse the ambiguity with an argparse error.
"""

from __future__ import annotations

import argparse

from ..syntaxes import SCP_PREFERENCES, SCU_PROPOSALS

# (short flag, key, help) in DCMTK's --help order.
SCU_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("-x=", "propose-uncompr", "propose all uncompressed TS, explicit VR with local byte ordering first"),
    ("-xe", "propose-little", "propose all uncompressed TS, explicit VR little endian first"),
    ("-xb", "propose-big", "propose all uncompressed TS, explicit VR big endian first"),
    ("-xi", "propose-implicit", "propose implicit VR little endian TS only"),
    ("-xs", "propose-lossless", "propose default JPEG lossless TS and all uncompressed transfer syntaxes"),
    ("-xy", "propose-jpeg8", "propose default JPEG lossy TS for 8 bit data and all uncompressed transfer syntaxes"),
    ("-xx", "propose-jpeg12", "propose default JPEG lossy TS for 12 bit data and all uncompressed transfer syntaxes"),
    ("-xv", "propose-j2k-lossless", "propose JPEG 2000 lossless TS and all uncompressed transfer syntaxes"),
    ("-xw", "propose-j2k-lossy", "propose JPEG 2000 lossy TS and all uncompressed transfer syntaxes"),
    ("-xt", "propose-jls-lossless", "propose JPEG-LS lossless TS and all uncompressed transfer syntaxes"),
    ("-xu", "propose-jls-lossy", "propose JPEG-LS lossy TS and all uncompressed transfer syntaxes"),
    ("-xm", "propose-mpeg2", "propose MPEG2 Main Profile @ Main Level TS"),
    ("-xh", "propose-mpeg2-high", "propose MPEG2 Main Profile @ High Level TS"),
    ("-xn", "propose-mpeg4", "propose MPEG4 AVC/H.264 HP / Level 4.1 TS"),
    ("-xl", "propose-mpeg4-bd", "propose MPEG4 AVC/H.264 BD-compatible TS"),
    ("-x2", "propose-mpeg4-2-2d", "propose MPEG4 AVC/H.264 HP / Level 4.2 TS (2D)"),
    ("-x3", "propose-mpeg4-2-3d", "propose MPEG4 AVC/H.264 HP / Level 4.2 TS (3D)"),
    ("-xo", "propose-mpeg4-2-st", "propose MPEG4 AVC/H.264 Stereo / Level 4.2 TS"),
    ("-x4", "propose-hevc", "propose HEVC/H.265 Main Profile / Level 5.1 TS"),
    ("-x5", "propose-hevc10", "propose HEVC/H.265 Main 10 Profile / Level 5.1 TS"),
    ("-xr", "propose-rle", "propose RLE lossless TS and all uncompressed transfer syntaxes"),
    ("-xd", "propose-deflated", "propose deflated expl. VR little endian TS and all uncompressed transfer syntaxes"),
)  # fmt: skip

# findscu, movescu and getscu (no files to send) offer only these, in this order.
_NON_STORAGE_SCU_KEYS = (
    "propose-uncompr",
    "propose-little",
    "propose-big",
    "propose-deflated",
    "propose-implicit",
)

SCP_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("+x=", "prefer-uncompr", "prefer explicit VR local byte order (default)"),
    ("+xe", "prefer-little", "prefer explicit VR little endian TS"),
    ("+xb", "prefer-big", "prefer explicit VR big endian TS"),
    ("+xs", "prefer-lossless", "prefer default JPEG lossless TS"),
    ("+xy", "prefer-jpeg8", "prefer default JPEG lossy TS for 8 bit data"),
    ("+xx", "prefer-jpeg12", "prefer default JPEG lossy TS for 12 bit data"),
    ("+xv", "prefer-j2k-lossless", "prefer JPEG 2000 lossless TS"),
    ("+xw", "prefer-j2k-lossy", "prefer JPEG 2000 lossy TS"),
    ("+xt", "prefer-jls-lossless", "prefer JPEG-LS lossless TS"),
    ("+xu", "prefer-jls-lossy", "prefer JPEG-LS lossy TS"),
    ("+xm", "prefer-mpeg2", "prefer MPEG2 Main Profile @ Main Level TS"),
    ("+xh", "prefer-mpeg2-high", "prefer MPEG2 Main Profile @ High Level TS"),
    ("+xn", "prefer-mpeg4", "prefer MPEG4 AVC/H.264 HP / Level 4.1 TS"),
    ("+xl", "prefer-mpeg4-bd", "prefer MPEG4 AVC/H.264 BD-compatible TS"),
    ("+x2", "prefer-mpeg4-2-2d", "prefer MPEG4 AVC/H.264 HP / Level 4.2 TS (2D)"),
    ("+x3", "prefer-mpeg4-2-3d", "prefer MPEG4 AVC/H.264 HP / Level 4.2 TS (3D)"),
    ("+xo", "prefer-mpeg4-2-st", "prefer MPEG4 AVC/H.264 Stereo HP / Level 4.2 TS"),
    ("+x4", "prefer-hevc", "prefer HEVC/H.265 Main Profile / Level 5.1 TS"),
    ("+x5", "prefer-hevc10", "prefer HEVC/H.265 Main 10 Profile / Level 5.1 TS"),
    ("+xr", "prefer-rle", "prefer RLE lossless TS"),
    ("+xd", "prefer-deflated", "prefer deflated expl. VR little endian TS"),
    ("+xi", "implicit", "accept implicit VR little endian TS only"),
    ("+xa", "accept-all", "accept all supported transfer syntaxes"),
)

DEFAULT_PREFERENCE = "prefer-uncompr"


# A parser, or an argument group of one (the caller's section of the help).
Container = argparse.ArgumentParser | argparse._ArgumentGroup


def _section(parser: Container, title: str, description: str | None) -> Container:
    """A titled group on a parser; a group passed in is used as it is (argparse deprecates
    nesting groups), taking our description only if it has none."""
    if isinstance(parser, argparse.ArgumentParser):
        return parser.add_argument_group(title, description)
    if parser.description is None:
        parser.description = description
    return parser


def add_scu_syntax_options(parser: Container, *, storage: bool = True) -> None:
    """Add DCMTK's -x options (mutually exclusive) storing their key in ``args.propose``.

    ``parser`` may be a parser or one of its argument groups. ``storage=True`` (storescu):
    all of storescu's options; the default (None) is our content-based proposal.
    ``storage=False`` (findscu, movescu, getscu): only -x= -xe -xb -xd -xi, and the
    default is "propose-uncompr" as in DCMTK.
    """
    if storage:
        options = SCU_OPTIONS
        default = None
        description = (
            "default: propose each file's own transfer syntax plus Explicit and Implicit "
            "VR Little Endian"
        )
    else:
        by_key = {key: (flag, key, text) for flag, key, text in SCU_OPTIONS}
        options = tuple(by_key[key] for key in _NON_STORAGE_SCU_KEYS)
        default = "propose-uncompr"
        description = "default: -x="
    section = _section(parser, "proposed transmission transfer syntaxes", description)
    exclusive = section.add_mutually_exclusive_group()
    for flag, key, text in options:
        exclusive.add_argument(
            flag, f"--{key}", dest="propose", action="store_const", const=key, help=text
        )
    section.set_defaults(propose=default)


def add_scp_syntax_options(parser: Container, *, accept_all: bool = True) -> None:
    """Add DCMTK's +x options (mutually exclusive) storing their key in ``args.prefer``.

    ``parser`` may be a parser or one of its argument groups. The default is
    "prefer-uncompr" (+x=). ``accept_all=False`` leaves out +xa, which DCMTK 3.6.7's
    dcmqrscp and getscu do not have.
    """
    section = _section(parser, "preferred network transfer syntaxes", None)
    exclusive = section.add_mutually_exclusive_group()
    for flag, key, text in SCP_OPTIONS:
        if key == "accept-all" and not accept_all:
            continue
        exclusive.add_argument(
            flag, f"--{key}", dest="prefer", action="store_const", const=key, help=text
        )
    section.set_defaults(prefer=DEFAULT_PREFERENCE)


def scu_proposal(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The transfer syntaxes the chosen -x option proposes, in order; None for the default
    content-based proposal (storage tools without an -x option)."""
    if args.propose is None:
        return None
    return SCU_PROPOSALS[args.propose]


def scp_preference(args: argparse.Namespace) -> tuple[str, ...]:
    """The acceptor's transfer syntax preference order for the chosen +x option."""
    return SCP_PREFERENCES[args.prefer]
