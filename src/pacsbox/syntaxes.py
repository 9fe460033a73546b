"""Transfer syntaxes by kind, and the lists DCMTK's -x (propose) and +x (prefer) options stand for.

Two kinds of facts live here. The groups (uncompressed, lossless, lossy, encapsulated,
deflated) answer "can this be sent as-is, does converting lose data, is Pixel Data in
fragments" (PS3.5 Section 10 and Annex A). The option tables are what DCMTK 3.6.7's tools put
on the wire for each option, in DCMTK's order (storescu.cc ``addStoragePresentationContexts``,
storescp.cc and dcmqrsrv.cc ``negotiateAssociation``), so ``pacsbox storescu -xs`` proposes
and ``pacsbox storescp +xs`` accepts exactly what the DCMTK tools do. "Local byte order" in
DCMTK's help means little endian on every machine we run on; the tables assume it.
"""

from __future__ import annotations

# Transfer syntax UIDs (PS3.6 Table A-1) as plain strings, named as pydicom names them (a
# test keeps them equal). Importing pydicom costs a command-line tool 0.2 s at start-up (it
# loads numpy and the pixel codecs); these strings are all that negotiation needs of it.
DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99"
ExplicitVRBigEndian = "1.2.840.10008.1.2.2"
ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
HEVCM10P51 = "1.2.840.10008.1.2.4.108"
HEVCMP51 = "1.2.840.10008.1.2.4.107"
HTJ2K = "1.2.840.10008.1.2.4.203"
HTJ2KLossless = "1.2.840.10008.1.2.4.201"
HTJ2KLosslessRPCL = "1.2.840.10008.1.2.4.202"
ImplicitVRLittleEndian = "1.2.840.10008.1.2"
JPEG2000 = "1.2.840.10008.1.2.4.91"
JPEG2000Lossless = "1.2.840.10008.1.2.4.90"
JPEG2000MC = "1.2.840.10008.1.2.4.93"
JPEG2000MCLossless = "1.2.840.10008.1.2.4.92"
JPEGBaseline8Bit = "1.2.840.10008.1.2.4.50"
JPEGExtended12Bit = "1.2.840.10008.1.2.4.51"
JPEGLSLossless = "1.2.840.10008.1.2.4.80"
JPEGLSNearLossless = "1.2.840.10008.1.2.4.81"
JPEGLossless = "1.2.840.10008.1.2.4.57"
JPEGLosslessSV1 = "1.2.840.10008.1.2.4.70"
JPIPHTJ2KReferencedDeflate = "1.2.840.10008.1.2.4.205"
MPEG2MPHL = "1.2.840.10008.1.2.4.101"
MPEG2MPML = "1.2.840.10008.1.2.4.100"
MPEG4HP41 = "1.2.840.10008.1.2.4.102"
MPEG4HP41BD = "1.2.840.10008.1.2.4.103"
MPEG4HP422D = "1.2.840.10008.1.2.4.104"
MPEG4HP423D = "1.2.840.10008.1.2.4.105"
MPEG4HP42STEREO = "1.2.840.10008.1.2.4.106"
MPEGTransferSyntaxes = (
    "1.2.840.10008.1.2.4.100",
    "1.2.840.10008.1.2.4.100.1",
    "1.2.840.10008.1.2.4.101",
    "1.2.840.10008.1.2.4.101.1",
    "1.2.840.10008.1.2.4.102",
    "1.2.840.10008.1.2.4.102.1",
    "1.2.840.10008.1.2.4.103",
    "1.2.840.10008.1.2.4.103.1",
    "1.2.840.10008.1.2.4.104",
    "1.2.840.10008.1.2.4.104.1",
    "1.2.840.10008.1.2.4.105",
    "1.2.840.10008.1.2.4.105.1",
    "1.2.840.10008.1.2.4.106",
    "1.2.840.10008.1.2.4.106.1",
    "1.2.840.10008.1.2.4.107",
    "1.2.840.10008.1.2.4.108",
)
RLELossless = "1.2.840.10008.1.2.5"

# --- groups ---------------------------------------------------------------------------------

# The native encodings, in DCMTK's fallback order (explicit little, explicit big, implicit).
UNCOMPRESSED: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)

# The whole data set is deflated (PS3.5 A.5); the JPIP "Deflate" variants are deflated too.
DEFLATED: frozenset[str] = frozenset(
    {
        DeflatedExplicitVRLittleEndian,
        "1.2.840.10008.1.2.4.95",  # JPIP Referenced Deflate
        JPIPHTJ2KReferencedDeflate,
    }
)

# Pixel Data compressed without loss: decompressing gives back the original values.
LOSSLESS_COMPRESSED: frozenset[str] = frozenset(
    {
        JPEGLossless,  # Process 14
        JPEGLosslessSV1,  # Process 14, selection value 1: the "default lossless" of -xs/+xs
        "1.2.840.10008.1.2.4.58",  # JPEG Lossless, Process 15 (retired)
        "1.2.840.10008.1.2.4.65",  # JPEG Lossless, Hierarchical, Process 28 (retired)
        "1.2.840.10008.1.2.4.66",  # JPEG Lossless, Hierarchical, Process 29 (retired)
        JPEGLSLossless,
        JPEG2000Lossless,
        JPEG2000MCLossless,
        HTJ2KLossless,
        HTJ2KLosslessRPCL,
        RLELossless,
        "1.2.840.10008.1.2.4.110",  # JPEG XL Lossless
        "1.2.840.10008.1.2.8.1",  # Deflated Image Frame Compression (each frame deflated)
    }
)

# Pixel Data that is, or may be, irreversibly compressed. The "lossless or lossy" syntaxes
# (JPEG 2000, HTJ2K, JPEG XL) and JPEG-LS near-lossless are here: a receiver cannot know
# from the syntax alone that nothing was lost (PS3.5 8.2, Lossy Image Compression (0028,2110)).
LOSSY_COMPRESSED: frozenset[str] = frozenset(
    {
        JPEGBaseline8Bit,  # Process 1: the "default lossy for 8 bit" of -xy/+xy
        JPEGExtended12Bit,  # Processes 2 and 4: the "default lossy for 12 bit" of -xx/+xx
        # Retired JPEG processes 3/5 to 25/27 (PS3.5 Annex A, retired in 2006).
        *(f"1.2.840.10008.1.2.4.{n}" for n in (52, 53, 54, 55, 56, 59, 60, 61, 62, 63, 64)),
        JPEGLSNearLossless,
        JPEG2000,
        JPEG2000MC,
        HTJ2K,
        *MPEGTransferSyntaxes,  # MPEG-2, MPEG-4 AVC and HEVC, fragmentable ones included
        "1.2.840.10008.1.2.4.111",  # JPEG XL JPEG Recompression (of a lossy JPEG)
        "1.2.840.10008.1.2.4.112",  # JPEG XL
    }
)

# Pixel Data in fragments (PS3.5 A.4): every compressed syntax, and the one that encapsulates
# uncompressed frames. JPIP-referenced and SMPTE ST 2110 syntaxes carry no encoded Pixel Data
# in the data set and are not encapsulated.
ENCAPSULATED: frozenset[str] = (
    LOSSLESS_COMPRESSED
    | LOSSY_COMPRESSED
    | frozenset({"1.2.840.10008.1.2.1.98"})  # Encapsulated Uncompressed Explicit VR LE
)


def is_compressed(ts: str) -> bool:
    """True if Pixel Data in ``ts`` is compressed (lossless or lossy).

    A deflated data set (``DEFLATED``) is not: its Pixel Data is native once inflated.
    """
    return ts in LOSSLESS_COMPRESSED or ts in LOSSY_COMPRESSED


def is_lossy(ts: str) -> bool:
    """True if Pixel Data in ``ts`` is, or may be, irreversibly compressed."""
    return ts in LOSSY_COMPRESSED


def is_retired(ts: str) -> bool:
    """True if the standard has retired ``ts`` (e.g. Explicit VR Big Endian, PS3.5 A.3)."""
    from pydicom._uid_dict import UID_dictionary  # only when asked: see the note above

    entry = UID_dictionary.get(ts)
    return entry is not None and entry[3] == "Retired"


# --- DCMTK's option tables ------------------------------------------------------------------

_FALLBACK = UNCOMPRESSED  # what DCMTK adds after a preferred syntax


def _then_uncompressed(preferred: str) -> tuple[str, ...]:
    return (preferred, *(ts for ts in _FALLBACK if ts != preferred))


# storescu / dcmqrscp (outgoing) -x options, keyed by the long option name without dashes:
# the preferred syntax first, then DCMTK's fallbacks. DCMTK's storescu proposes this list in
# TWO presentation contexts per SOP class (the first syntax alone, then the rest; see
# ``storescu_contexts``) unless --combine (+C) is given, which puts the whole list in one.
# Implicit VR and the video syntaxes get no fallback: implicit is the default every SCP
# must accept, and a video cannot be decompressed for a fallback anyway. findscu, movescu
# and getscu know only -x= -xe -xb -xi -xd and always propose the list in one context.
SCU_PROPOSALS: dict[str, tuple[str, ...]] = {
    "propose-uncompr": _then_uncompressed(ExplicitVRLittleEndian),  # -x= (default)
    "propose-little": _then_uncompressed(ExplicitVRLittleEndian),  # -xe
    "propose-big": _then_uncompressed(ExplicitVRBigEndian),  # -xb
    "propose-implicit": (ImplicitVRLittleEndian,),  # -xi
    "propose-lossless": _then_uncompressed(JPEGLosslessSV1),  # -xs
    "propose-jpeg8": _then_uncompressed(JPEGBaseline8Bit),  # -xy
    "propose-jpeg12": _then_uncompressed(JPEGExtended12Bit),  # -xx
    "propose-j2k-lossless": _then_uncompressed(JPEG2000Lossless),  # -xv
    "propose-j2k-lossy": _then_uncompressed(JPEG2000),  # -xw
    "propose-jls-lossless": _then_uncompressed(JPEGLSLossless),  # -xt
    "propose-jls-lossy": _then_uncompressed(JPEGLSNearLossless),  # -xu
    "propose-mpeg2": (MPEG2MPML,),  # -xm
    "propose-mpeg2-high": (MPEG2MPHL,),  # -xh
    "propose-mpeg4": (MPEG4HP41,),  # -xn
    "propose-mpeg4-bd": (MPEG4HP41BD,),  # -xl
    "propose-mpeg4-2-2d": (MPEG4HP422D,),  # -x2
    "propose-mpeg4-2-3d": (MPEG4HP423D,),  # -x3
    "propose-mpeg4-2-st": (MPEG4HP42STEREO,),  # -xo
    "propose-hevc": (HEVCMP51,),  # -x4
    "propose-hevc10": (HEVCM10P51,),  # -x5
    "propose-rle": _then_uncompressed(RLELossless),  # -xr
    "propose-deflated": _then_uncompressed(DeflatedExplicitVRLittleEndian),  # -xd
}


def storescu_contexts(key: str, *, combine: bool = False) -> tuple[tuple[str, ...], ...]:
    """The transfer syntax lists DCMTK's storescu proposes for each SOP class with option ``key``.

    Without --combine: one context with the preferred syntax alone and, if there are
    fallbacks, a second context with them (e.g. -xs: ``(SV1,)`` then ``(ELE, EBE, ILE)``).
    With --combine (+C): one context with the whole list.
    """
    syntaxes = SCU_PROPOSALS[key]
    if combine or len(syntaxes) == 1:
        return (syntaxes,)
    return (syntaxes[:1], syntaxes[1:])


def _preferred_then_uncompressed(preferred: str) -> tuple[str, ...]:
    return (preferred, *_FALLBACK)


# storescp / dcmqrscp / movescu / getscu (incoming) +x options: the acceptor's preference
# order. For each proposed context the first syntax of this list that was proposed is
# accepted (ASC_acceptContextsWithPreferredTransferSyntaxes); a context proposing none of
# them is refused. Compressed preferences still accept the uncompressed syntaxes, video ones
# included (unlike the SCU side). DCMTK 3.6.7's dcmqrscp and getscu have no --accept-all.
SCP_PREFERENCES: dict[str, tuple[str, ...]] = {
    "prefer-uncompr": UNCOMPRESSED,  # +x= (default)
    "prefer-little": UNCOMPRESSED,  # +xe
    "prefer-big": (  # +xb
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    ),
    "prefer-lossless": _preferred_then_uncompressed(JPEGLosslessSV1),  # +xs
    "prefer-jpeg8": _preferred_then_uncompressed(JPEGBaseline8Bit),  # +xy
    "prefer-jpeg12": _preferred_then_uncompressed(JPEGExtended12Bit),  # +xx
    "prefer-j2k-lossless": _preferred_then_uncompressed(JPEG2000Lossless),  # +xv
    "prefer-j2k-lossy": _preferred_then_uncompressed(JPEG2000),  # +xw
    "prefer-jls-lossless": _preferred_then_uncompressed(JPEGLSLossless),  # +xt
    "prefer-jls-lossy": _preferred_then_uncompressed(JPEGLSNearLossless),  # +xu
    "prefer-mpeg2": _preferred_then_uncompressed(MPEG2MPML),  # +xm
    "prefer-mpeg2-high": _preferred_then_uncompressed(MPEG2MPHL),  # +xh
    "prefer-mpeg4": _preferred_then_uncompressed(MPEG4HP41),  # +xn
    "prefer-mpeg4-bd": _preferred_then_uncompressed(MPEG4HP41BD),  # +xl
    "prefer-mpeg4-2-2d": _preferred_then_uncompressed(MPEG4HP422D),  # +x2
    "prefer-mpeg4-2-3d": _preferred_then_uncompressed(MPEG4HP423D),  # +x3
    "prefer-mpeg4-2-st": _preferred_then_uncompressed(MPEG4HP42STEREO),  # +xo
    "prefer-hevc": _preferred_then_uncompressed(HEVCMP51),  # +x4
    "prefer-hevc10": _preferred_then_uncompressed(HEVCM10P51),  # +x5
    "prefer-rle": _preferred_then_uncompressed(RLELossless),  # +xr
    "prefer-deflated": _preferred_then_uncompressed(DeflatedExplicitVRLittleEndian),  # +xd
    "implicit": (ImplicitVRLittleEndian,),  # +xi: implicit VR little endian only
    # +xa: every syntax DCMTK 3.6.7 supports, lossy first (storescp.cc, movescu.cc). Not
    # JPEG 2000 Part 2, HTJ2K, JPEG Process 14 (.57) or fragmentable MPEG: 3.6.7 lacks them.
    "accept-all": (
        JPEG2000,
        JPEG2000Lossless,
        JPEGExtended12Bit,
        JPEGBaseline8Bit,
        JPEGLosslessSV1,
        JPEGLSNearLossless,
        JPEGLSLossless,
        RLELossless,
        MPEG2MPML,
        MPEG2MPHL,
        MPEG4HP41,
        MPEG4HP41BD,
        MPEG4HP422D,
        MPEG4HP423D,
        MPEG4HP42STEREO,
        HEVCMP51,
        HEVCM10P51,
        DeflatedExplicitVRLittleEndian,
        *UNCOMPRESSED,
    ),
}


# An archive keeps what it is sent as it was sent: every syntax is accepted; where a peer
# offers several in one context, uncompressed first, then lossless, and lossy last (so no
# sender is ever asked to compress lossily on our account). pacsbox serve's policy, and
# pacsbox dcmqrscp's when no +x option is given (DCMTK's dcmqrscp accepts only uncompressed
# syntaxes then, which is how the tutorial's JPEG lossless store fails).
ARCHIVE_PREFERENCE: tuple[str, ...] = (
    *UNCOMPRESSED,
    *sorted(DEFLATED),
    *sorted(LOSSLESS_COMPRESSED),
    *sorted(LOSSY_COMPRESSED),
)
