"""Philox4x32-10 in plain Python, bit-exact with kernels/common/philox.h, so the reference cases can
reproduce the dropout masks strata draws (kernels/common/dropout.h).

Not a reference group of its own: torch_reference.py runs every module here as a group, so cases()
yields nothing. normalization.py imports the functions below.
"""

MASK32 = 0xFFFFFFFF
MUL0, MUL1 = 0xD2511F53, 0xCD9E8D57
WEYL0, WEYL1 = 0x9E3779B9, 0xBB67AE85


def philox4x32_10(ctr, k0, k1):
    """Ten rounds of the Philox4x32 bijection of the 4-word counter `ctr` keyed by (k0, k1)."""
    c0, c1, c2, c3 = ctr
    for _ in range(10):
        p0 = MUL0 * c0
        p1 = MUL1 * c2
        hi0, lo0 = p0 >> 32, p0 & MASK32
        hi1, lo1 = p1 >> 32, p1 & MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + WEYL0) & MASK32
        k1 = (k1 + WEYL1) & MASK32
    return c0, c1, c2, c3


def draw(seed, block_index, stream=0):
    """The 4 words at position `block_index` of stream `stream` for the 64-bit `seed`."""
    ctr = (block_index & MASK32, (block_index >> 32) & MASK32, stream & MASK32, (stream >> 32) & MASK32)
    return philox4x32_10(ctr, seed & MASK32, (seed >> 32) & MASK32)


def word(seed, index, stream=0):
    """Element `index` of the stream: word index % 4 of block index // 4."""
    return draw(seed, index // 4, stream)[index % 4]


def to_unit_float(w):
    """Uniform in [0, 1) from the top 24 bits, exactly k / 2^24 (a Python float holds it exactly)."""
    return (w >> 8) * (1.0 / 16777216.0)


# The Philox stream strata reserves for dropout masks (kernels/common/dropout.h: kStream).
DROPOUT_STREAM = 1


def dropout_kept(seed, first, n, p):
    """strata's dropout mask for a draw of n elements starting at counter `first`: element i is kept
    iff to_unit_float(word(seed, first + i, DROPOUT_STREAM)) >= p (compared in double, as the C++ predicate)."""
    kept = []
    block_index, block = None, None
    for i in range(n):
        index = first + i
        if index // 4 != block_index:
            block_index = index // 4
            block = draw(seed, block_index, DROPOUT_STREAM)
        kept.append(to_unit_float(block[index % 4]) >= p)
    return kept


# Random123's known-answer vectors (kat_vectors for philox4x32_10): a wrong constant or word order
# fails here, before any case is written.
assert philox4x32_10((0, 0, 0, 0), 0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
assert philox4x32_10((MASK32,) * 4, MASK32, MASK32) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
assert philox4x32_10((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), 0xA4093822, 0x299F31D0) == (
    0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)

