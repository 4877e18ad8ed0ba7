#!/usr/bin/env python3
"""An independent implementation of SifreDB format v1, written from the documentation alone.

Sources: docs/FORMAT.md, docs/BLIND-INDEX.md, KEYS.md, README.md and the JSON files in test-vectors/.
No line of SifreDB's own code was read to write it. Where the documentation left something open, the
guess is marked `SPEC GAP` below and listed in /work/notes/spec-gaps.md.

It exists to test the documentation and both SifreDB backends (`__test__/second-implementation.spec.js`):
what it computes and what SifreDB computes must agree byte for byte, refusal for refusal.

Python 3.11, `cryptography` (ChaCha20Poly1305, AESSIV, HKDF, HMAC); XChaCha20-Poly1305 is built from
HChaCha20 as FORMAT.md spells it out. `python3 sifredb_v1.py serve` answers JSON requests, one per line
on stdin, one per line on stdout (see `serve`).
"""
from __future__ import annotations

import base64
import functools
import json
import math
import os
import re
import stat
import struct
import sys
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESSIV, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# JSON values may nest deeply; the reader re-serialises them recursively.
sys.setrecursionlimit(20000)

ERR_FORMAT = "ERR_SIFREDB_FORMAT"
ERR_KEY = "ERR_SIFREDB_KEY"
ERR_AUTH = "ERR_SIFREDB_AUTH"
ERR_INPUT = "ERR_SIFREDB_INPUT"


class SifreDBError(Exception):
    """A refusal with one of FORMAT.md's stable error codes. Messages never quote inputs or keys."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _utf8(s: str, what: str, code: str = ERR_INPUT) -> bytes:
    """UTF-8 of a string; a lone surrogate has no UTF-8 form and is refused."""
    try:
        return js_string(s).encode("utf-8")
    except UnicodeEncodeError:
        raise SifreDBError(code, f"{what} holds a lone surrogate") from None


def js_string(s: str) -> str:
    """A Python str standing for a JS string: surrogate pairs written as two code points are joined,
    so that a high surrogate followed by a low one counts as the one character it is in JS."""
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in s):
        return s
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _is_number(x: Any) -> bool:
    return isinstance(x, float)


def _is_bigint(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# ---------------------------------------------------------------------------------------------
# Canonical context (FORMAT.md, "Canonical context")


@dataclass(frozen=True)
class Context:
    table: str
    column: str
    tenant: str | None = None
    version: Any = 1

    def canonical(self) -> bytes:
        tenant = b""
        if self.tenant is not None:
            if not isinstance(self.tenant, str):
                raise SifreDBError(ERR_INPUT, "tenant must be a string")
            tenant = _utf8(self.tenant, "tenant")
            if not 1 <= len(tenant) <= 255:
                raise SifreDBError(ERR_INPUT, "tenant must be 1..255 bytes of UTF-8")
        parts = []
        for what, name in (("table", self.table), ("column", self.column)):
            if not isinstance(name, str):
                raise SifreDBError(ERR_INPUT, f"{what} must be a string")
            encoded = _utf8(name, what)
            if not 1 <= len(encoded) <= 255:
                raise SifreDBError(ERR_INPUT, f"{what} must be 1..255 bytes of UTF-8")
            parts.append(encoded)
        version = self.version
        if isinstance(version, bool) or not isinstance(version, (int, float)):
            raise SifreDBError(ERR_INPUT, "context version must be an integer")
        if isinstance(version, float):
            if not math.isfinite(version) or version != math.floor(version):
                raise SifreDBError(ERR_INPUT, "context version must be an integer")
            version = int(version)
        if not 1 <= version <= 0xFFFFFFFF:
            raise SifreDBError(ERR_INPUT, "context version must be in 1..4294967295")
        table, column = parts
        return (b"\x01" + _u16(len(tenant)) + tenant + _u16(len(table)) + table
                + _u16(len(column)) + column + _u32(version))


# ---------------------------------------------------------------------------------------------
# Key derivation (FORMAT.md, "Key derivation")

HKDF_SALT = b"SifreDB/v1/hkdf-salt"
PURPOSES = {"chacha20poly1305": 32, "xchacha20poly1305": 32, "aes-256-siv": 64, "blind-index": 32}
ALGORITHM_PURPOSE = {1: "chacha20poly1305", 2: "xchacha20poly1305", 3: "aes-256-siv"}
NONCE_LENGTH = {1: 12, 2: 24, 3: 0}


def derive_key(root_key: bytes, purpose: str, ctx: Context, index_name: str | None = None) -> bytes:
    if len(root_key) != 32:
        raise SifreDBError(ERR_KEY, "a root key is 32 bytes")
    info = b"SifreDB/v1/" + purpose.encode("ascii") + b"\x00" + ctx.canonical()
    if purpose == "blind-index":
        if not isinstance(index_name, str):
            raise SifreDBError(ERR_INPUT, "a blind index needs a name")
        name = _utf8(index_name, "index name")
        if not 1 <= len(name) <= 255:
            raise SifreDBError(ERR_INPUT, "index name must be 1..255 bytes of UTF-8")
        info += _u16(len(name)) + name
    elif index_name is not None:
        raise ValueError("only blind-index keys take an index name")
    return _hkdf(bytes(root_key), info, PURPOSES[purpose])


@functools.lru_cache(maxsize=4096)  # the driver derives the same keys many times; a cache, not a format rule
def _hkdf(root_key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=HKDF_SALT, info=info).derive(root_key)


# ---------------------------------------------------------------------------------------------
# XChaCha20-Poly1305 (FORMAT.md, "Algorithms, exactly"): HChaCha20 subkey, then the RFC 8439 AEAD.

_MASK32 = 0xFFFFFFFF


def _rotl(v: int, c: int) -> int:
    return ((v << c) & _MASK32) | (v >> (32 - c))


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """20 ChaCha rounds over constants ‖ key ‖ nonce[0..16], no final addition; words 0–3 and 12–15."""
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def quarter(a: int, b: int, c: int, d: int) -> None:
        s[a] = (s[a] + s[b]) & _MASK32; s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & _MASK32; s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & _MASK32; s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & _MASK32; s[b] = _rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        quarter(0, 4, 8, 12); quarter(1, 5, 9, 13); quarter(2, 6, 10, 14); quarter(3, 7, 11, 15)
        quarter(0, 5, 10, 15); quarter(1, 6, 11, 12); quarter(2, 7, 8, 13); quarter(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def _aead_seal(algorithm: int, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    if algorithm == 1:
        return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)
    if algorithm == 2:
        return ChaCha20Poly1305(hchacha20(key, nonce[:16])).encrypt(b"\0" * 4 + nonce[16:], plaintext, aad)
    return AESSIV(key).encrypt(plaintext, [aad])


def _aead_open(algorithm: int, key: bytes, nonce: bytes, body: bytes, aad: bytes) -> bytes:
    try:
        if algorithm == 1:
            return ChaCha20Poly1305(key).decrypt(nonce, body, aad)
        if algorithm == 2:
            return ChaCha20Poly1305(hchacha20(key, nonce[:16])).decrypt(b"\0" * 4 + nonce[16:], body, aad)
        return AESSIV(key).decrypt(body, [aad])
    except InvalidTag:
        raise SifreDBError(ERR_AUTH, "authentication failed") from None


# ---------------------------------------------------------------------------------------------
# Row binding (FORMAT.md, "Row binding")

MAX_SAFE_INTEGER = 2**53 - 1


def encode_row_ad(row_ad: Any) -> bytes:
    """The JS API's rowAd encodings: bytes as is, string as UTF-8, safe-integer number and bigint as
    ASCII decimal (`-0` as `0`)."""
    if isinstance(row_ad, (bytes, bytearray)):
        return bytes(row_ad)
    if isinstance(row_ad, str):
        return _utf8(row_ad, "rowAd")
    if _is_number(row_ad):
        if not math.isfinite(row_ad) or row_ad != math.floor(row_ad) or abs(row_ad) > MAX_SAFE_INTEGER:
            raise SifreDBError(ERR_INPUT, "a number rowAd must be a safe integer")
        return str(int(row_ad)).encode("ascii")
    if _is_bigint(row_ad):
        return str(row_ad).encode("ascii")
    raise SifreDBError(ERR_INPUT, "rowAd must be bytes, a string, a safe integer or a bigint")


def build_aad(header: bytes, ctx: Context, row_ad: Any = None) -> bytes:
    aad = header + ctx.canonical()
    if row_ad is not None:
        bound = encode_row_ad(row_ad)
        aad += _u32(len(bound)) + bound
    return aad


# ---------------------------------------------------------------------------------------------
# Plaintext values (FORMAT.md, "Plaintext" and "JSON values")
#
# Python stand-ins for JS values: str → string, float → number, int → bigint, bool → boolean,
# JsDate → Date, bytes → Uint8Array, None / list / dict → JSON (tag 0x06). Inside JSON only
# None, bool, float, str, list and dict may appear; UNDEFINED, HOLE, int (a bigint), JsDate and
# bytes there are the writer's refusals.

TAG_BYTES, TAG_STRING, TAG_NUMBER, TAG_BIGINT, TAG_BOOLEAN, TAG_DATE, TAG_JSON = range(7)
TAG_TYPES = {TAG_BYTES: "bytes", TAG_STRING: "string", TAG_NUMBER: "number", TAG_BIGINT: "bigint",
             TAG_BOOLEAN: "boolean", TAG_DATE: "date", TAG_JSON: "json"}
CANONICAL_NAN = bytes.fromhex("7ff8000000000000")
MAX_TIME = 8.64e15
BIGINT_TEXT = re.compile(rb"(0|-?[1-9][0-9]*)\Z")


@dataclass(frozen=True)
class JsDate:
    time: float  # the time value (getTime()); NaN for an invalid Date


class _Sentinel:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNDEFINED = _Sentinel("undefined")
HOLE = _Sentinel("hole")


def float_bits(x: float) -> bytes:
    return struct.pack(">d", x)


def encode_value(value: Any) -> bytes:
    """The writer: plaintext = type tag ‖ value bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes([TAG_BYTES]) + bytes(value)
    if isinstance(value, str):
        return bytes([TAG_STRING]) + _utf8(value, "value")
    if isinstance(value, bool):
        return bytes([TAG_BOOLEAN, 1 if value else 0])
    if _is_number(value):
        return bytes([TAG_NUMBER]) + (CANONICAL_NAN if math.isnan(value) else float_bits(value))
    if _is_bigint(value):
        return bytes([TAG_BIGINT]) + str(value).encode("ascii")
    if isinstance(value, JsDate):
        t = value.time
        if not math.isfinite(t) or t != math.floor(t) or abs(t) > MAX_TIME:
            raise SifreDBError(ERR_INPUT, "value is an invalid Date")
        return bytes([TAG_DATE]) + float_bits(t + 0.0)  # TimeClip: never −0
    if value is None or isinstance(value, (list, dict)):
        return bytes([TAG_JSON]) + json_stringify(value).encode("utf-8")
    raise SifreDBError(ERR_INPUT, "value must be a string, Uint8Array, number, bigint, boolean, Date, null, array or plain object")


def decode_value(plaintext: bytes) -> Any:
    """The reader's step 12: exactly what the writer produces, anything else ERR_SIFREDB_FORMAT."""
    tag, data = plaintext[0], plaintext[1:]
    if tag == TAG_BYTES:
        return bytes(data)
    if tag == TAG_STRING:
        try:
            return data.decode("utf-8")  # Python's decoder refuses surrogates, overlongs, > U+10FFFF
        except UnicodeDecodeError:
            raise SifreDBError(ERR_FORMAT, "decrypted string is not well-formed UTF-8") from None
    if tag == TAG_NUMBER:
        if len(data) != 8:
            raise SifreDBError(ERR_FORMAT, "decrypted number is not 8 bytes")
        x = struct.unpack(">d", data)[0]
        if math.isnan(x) and data != CANONICAL_NAN:
            raise SifreDBError(ERR_FORMAT, "decrypted number is a non-canonical NaN")
        return x
    if tag == TAG_BIGINT:
        if not BIGINT_TEXT.match(data):
            raise SifreDBError(ERR_FORMAT, "decrypted bigint is not canonical decimal")
        return int(data)
    if tag == TAG_BOOLEAN:
        if data not in (b"\x00", b"\x01"):
            raise SifreDBError(ERR_FORMAT, "decrypted boolean is not 00 or 01")
        return data == b"\x01"
    if tag == TAG_DATE:
        if len(data) != 8:
            raise SifreDBError(ERR_FORMAT, "decrypted Date is not 8 bytes")
        t = struct.unpack(">d", data)[0]
        if (not math.isfinite(t) or t != math.floor(t) or abs(t) > MAX_TIME
                or data == b"\x80" + b"\0" * 7):
            raise SifreDBError(ERR_FORMAT, "decrypted Date is not a valid time value")
        return JsDate(t)
    if tag == TAG_JSON:
        return json_parse_strict(data)
    raise SifreDBError(ERR_FORMAT, "decrypted value has an unknown type tag")


# --- ECMAScript Number::toString, for JSON numbers and blind-index text ------------------------


def js_number_to_string(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + js_number_to_string(-x)
    if math.isinf(x):
        return "Infinity"
    # repr gives the shortest round-tripping digits (closest on ties), only formatted differently.
    mantissa, _, exponent = repr(x).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exp10 = (int(exponent) if exponent else 0) - len(fraction)
    stripped = digits.rstrip("0")
    exp10 += len(digits) - len(stripped)
    s, k = stripped, len(stripped)
    n = exp10 + k  # x = s × 10^(n−k)
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + s
    e = n - 1
    sign = "+" if e >= 0 else "-"
    return s[0] + ("." + s[1:] if k > 1 else "") + "e" + sign + str(abs(e))


# --- JSON writer (JSON.stringify) ---------------------------------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_string(s: str) -> str:
    out = ['"']
    for ch in js_string(s):
        c = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif c < 0x20 or 0xD800 <= c <= 0xDFFF:  # after js_string, any surrogate left is lone
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _is_array_index(key: str) -> bool:
    return (key == "0" or re.fullmatch(r"[1-9][0-9]*", key) is not None) and int(key) <= 4294967294


def _ordered_keys(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    indices = sorted((k for k in keys if _is_array_index(k)), key=int)
    return indices + [k for k in keys if not _is_array_index(k)]


def json_stringify(value: Any) -> str:
    """JSON.stringify of a JSON value (top level null, array or object), refusing what it would
    silently drop or rewrite with ERR_SIFREDB_INPUT."""
    if not (value is None or isinstance(value, (list, dict))):
        raise SifreDBError(ERR_INPUT, "a JSON value is null, an array or an object at the top")
    out: list[str] = []
    _stringify(value, "value", out, set(), 1)
    return "".join(out)


# FORMAT.md "JSON values" 7: at most 1000 levels of arrays and objects, the outermost being level 1.
# (Missing from the docs when this was first written; format-v1-reject.json showed it.)
MAX_JSON_DEPTH = 1000


def _stringify(v: Any, path: str, out: list[str], active: set[int], depth: int) -> None:
    if v is None:
        out.append("null")
    elif isinstance(v, bool):
        out.append("true" if v else "false")
    elif _is_number(v):
        if not math.isfinite(v):
            raise SifreDBError(ERR_INPUT, f"{path} is {js_number_to_string(v)}")
        out.append(js_number_to_string(v))
    elif isinstance(v, str):
        out.append(_json_string(v))
    elif isinstance(v, (list, dict)):
        if id(v) in active:
            raise SifreDBError(ERR_INPUT, f"{path} is a circular reference")
        if depth > MAX_JSON_DEPTH:
            raise SifreDBError(ERR_INPUT, f"{path} is nested deeper than {MAX_JSON_DEPTH} levels")
        active.add(id(v))
        if isinstance(v, list):
            out.append("[")
            for i, item in enumerate(v):
                if i:
                    out.append(",")
                _stringify(item, f"{path}[{i}]", out, active, depth + 1)
            out.append("]")
        else:
            out.append("{")
            for i, key in enumerate(_ordered_keys(v.keys())):
                if i:
                    out.append(",")
                out.append(_json_string(key) + ":")
                _stringify(v[key], f"{path}.{key}", out, active, depth + 1)
            out.append("}")
        active.discard(id(v))
    elif v is UNDEFINED:
        raise SifreDBError(ERR_INPUT, f"{path} is undefined")
    elif v is HOLE:
        raise SifreDBError(ERR_INPUT, f"{path} is a hole in a sparse array")
    elif _is_bigint(v):
        raise SifreDBError(ERR_INPUT, f"{path} is a bigint")
    else:
        raise SifreDBError(ERR_INPUT, f"{path} is not a plain JSON value")


# --- JSON reader: parse, then re-serialise and compare (FORMAT.md's "simplest correct reader rule") -


class _Refused(Exception):
    pass


def _pairs_to_object(pairs: list[tuple[str, Any]]) -> dict:
    obj: dict = {}
    for key, val in pairs:
        if key in obj:
            raise _Refused("duplicate key")
        obj[key] = val
    return obj


def _refuse_constant(_name: str) -> Any:
    raise _Refused("NaN/Infinity literal")


def _finite(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise _Refused("number not finite as binary64")
    return x


def json_parse_strict(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_pairs_to_object, parse_float=_finite,
                           parse_int=_finite, parse_constant=_refuse_constant)
        if not (value is None or isinstance(value, (list, dict))):
            raise _Refused("top level is not null, an array or an object")
        # JSON object keys were created in text order; the writer puts index keys first.
        if json_stringify(value).encode("utf-8") != data:
            raise _Refused("not the writer's exact text")
        return value
    except (_Refused, UnicodeDecodeError, ValueError, RecursionError, SifreDBError):
        raise SifreDBError(ERR_FORMAT, "decrypted JSON is not the text a correct writer produces") from None


# ---------------------------------------------------------------------------------------------
# Text form (FORMAT.md, "Text form")

TEXT_PREFIX = "sdb1:"
_TEXT_PATTERN = re.compile(r"sdb1:[A-Za-z0-9_-]+\Z")
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def to_text(envelope: bytes) -> str:
    return TEXT_PREFIX + base64.urlsafe_b64encode(envelope).decode("ascii").rstrip("=")


def from_text(text: str) -> bytes:
    if not isinstance(text, str) or not _TEXT_PATTERN.match(text):
        raise SifreDBError(ERR_FORMAT, "not an sdb1 text ciphertext")
    payload = text[len(TEXT_PREFIX):]
    if len(payload) % 4 == 1:
        raise SifreDBError(ERR_FORMAT, "text ciphertext has an impossible length")
    last = _B64URL.index(payload[-1])
    unused_bits = {0: 0, 2: 4, 3: 2}[len(payload) % 4]
    if last & ((1 << unused_bits) - 1):
        raise SifreDBError(ERR_FORMAT, "text ciphertext is not canonical")
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))


# ---------------------------------------------------------------------------------------------
# Envelopes (FORMAT.md, "Binary envelope" and "Decryption")


def seal_plaintext(plaintext: bytes, ctx: Context, root_key: bytes, key_version: int, algorithm: int,
                   row_ad: Any = None, nonce: bytes | None = None) -> bytes:
    if algorithm not in ALGORITHM_PURPOSE:
        raise ValueError("algorithm is 1, 2 or 3")
    if not 1 <= key_version <= 0xFFFFFFFF:
        raise ValueError("key version is 1..2^32-1")
    if algorithm == 3:
        if nonce:
            raise ValueError("AES-SIV takes no nonce")
        nonce = b""
    elif nonce is None:
        nonce = os.urandom(NONCE_LENGTH[algorithm])
    if len(nonce) != NONCE_LENGTH[algorithm]:
        raise ValueError("wrong nonce length")
    header = bytes([0x53, 0x01, algorithm]) + _u32(key_version)
    key = derive_key(root_key, ALGORITHM_PURPOSE[algorithm], ctx)
    return header + nonce + _aead_seal(algorithm, key, nonce, plaintext, build_aad(header, ctx, row_ad))


def seal(value: Any, ctx: Context, root_key: bytes, key_version: int, algorithm: int,
         row_ad: Any = None, nonce: bytes | None = None) -> bytes:
    ctx.canonical()  # the context is validated before the value
    return seal_plaintext(encode_value(value), ctx, root_key, key_version, algorithm, row_ad, nonce)


def open_plaintext(ciphertext: bytes | str, ctx: Context, keys: dict[int, bytes], reader: str,
                   row_ad: Any = None) -> bytes:
    """Steps 1–10 of "Decryption": the authenticated plaintext (type tag ‖ value bytes).
    `reader` is "vault" (algorithms 1, 2) or "deterministic" (algorithm 3)."""
    envelope = from_text(ciphertext) if isinstance(ciphertext, str) else bytes(ciphertext)
    if len(envelope) < 7:
        raise SifreDBError(ERR_FORMAT, "too short for a header")
    if envelope[0] != 0x53:
        raise SifreDBError(ERR_FORMAT, "not a SifreDB envelope")
    if envelope[1] != 0x01:
        raise SifreDBError(ERR_FORMAT, "unsupported format version")
    algorithm = envelope[2]
    if algorithm not in ALGORITHM_PURPOSE:
        raise SifreDBError(ERR_FORMAT, "unknown algorithm")
    key_version = int.from_bytes(envelope[3:7], "big")
    if key_version == 0:
        raise SifreDBError(ERR_FORMAT, "key version 0")
    nonce_length = NONCE_LENGTH[algorithm]
    if len(envelope) < 7 + nonce_length + 16 + 1:
        raise SifreDBError(ERR_FORMAT, "truncated envelope")
    if (reader == "deterministic") != (algorithm == 3):
        raise SifreDBError(ERR_FORMAT, "this vault does not read this algorithm")
    if key_version not in keys:
        raise SifreDBError(ERR_KEY, "unknown key version")
    header, nonce, body = envelope[:7], envelope[7:7 + nonce_length], envelope[7 + nonce_length:]
    aad = build_aad(header, ctx, row_ad)
    key = derive_key(keys[key_version], ALGORITHM_PURPOSE[algorithm], ctx)
    return _aead_open(algorithm, key, nonce, body, aad)


def open_value(ciphertext: bytes | str, ctx: Context, keys: dict[int, bytes], reader: str,
               row_ad: Any = None, expect: str | None = None) -> Any:
    ctx.canonical()  # SPEC GAP: the order of context validation vs. step 1 is not stated
    plaintext = open_plaintext(ciphertext, ctx, keys, reader, row_ad)
    tag = plaintext[0]
    if expect is not None and tag in TAG_TYPES and TAG_TYPES[tag] != expect:
        raise SifreDBError(ERR_INPUT, f"the stored value is a {TAG_TYPES[tag]}, not a {expect}")
    return decode_value(plaintext)


# ---------------------------------------------------------------------------------------------
# Blind-index terms (BLIND-INDEX.md, "Terms, byte for byte")

_JS_WHITESPACE = set("\u0009\u000a\u000b\u000c\u000d\u0020\u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {
    chr(c) for c in range(0x2000, 0x200B)}


def _js_trim(s: str) -> str:
    # SPEC GAP: BLIND-INDEX.md "## Transforms" is "(see below)". Guess: ECMAScript String.prototype.trim
    # (WhiteSpace and LineTerminator: TAB VT FF SP NBSP ZWNBSP, category Zs, LF CR LS PS).
    start, end = 0, len(s)
    while start < end and (s[start] in _JS_WHITESPACE or unicodedata.category(s[start]) == "Zs"):
        start += 1
    while end > start and (s[end - 1] in _JS_WHITESPACE or unicodedata.category(s[end - 1]) == "Zs"):
        end -= 1
    return s[start:end]


def apply_transform(text: str, transform: Any) -> str:
    # SPEC GAP: lowercase/uppercase/nfc are not defined beyond their names; guess: Unicode default
    # case mapping (full, with Final_Sigma) and NFC, which Python gives on Unicode 14.0.
    if transform == "lowercase":
        return text.lower()
    if transform == "uppercase":
        return text.upper()
    if transform == "trim":
        return _js_trim(text)
    if transform == "digits":
        return "".join(c for c in text if "0" <= c <= "9")  # SPEC GAP: "ASCII digits only" = keep them
    if transform == "nfc":
        return unicodedata.normalize("NFC", text)
    if isinstance(transform, dict) and list(transform) == ["lastN"]:
        n = transform["lastN"]
        if isinstance(n, bool) or not isinstance(n, (int, float)) or n != math.floor(n) or n < 1:
            raise SifreDBError(ERR_INPUT, "lastN must be an integer >= 1")
        return text[-int(n):]  # code points (js_string joined the pairs)
    raise SifreDBError(ERR_INPUT, "unknown transform")


def index_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if _is_number(value) and math.isfinite(value):
        return js_number_to_string(value)
    if _is_bigint(value):
        return str(value)
    raise SifreDBError(ERR_INPUT, "a blind-index value must be a string, a finite number or a bigint")


def index_message(fields: list[tuple[Any, list[Any]]]) -> bytes:
    """fields: (value, transforms) per field, in the index's field order."""
    message = b""
    for value, transforms in fields:
        for transform in transforms:  # validate every transform before computing
            apply_transform("", transform)
        text = js_string(index_text(value))
        for transform in transforms:
            text = js_string(apply_transform(text, transform))
        encoded = _utf8(text, "transformed value")
        message += _u32(len(encoded)) + encoded
    return message


def blind_index_term(root_key: bytes, ctx: Context, index_name: str, bits: Any,
                     fields: list[tuple[Any, list[Any]]]) -> bytes:
    if isinstance(bits, bool) or not isinstance(bits, (int, float)) or bits != math.floor(bits) or not 8 <= bits <= 256:
        raise SifreDBError(ERR_INPUT, "bits must be an integer in 8..256")
    bits = int(bits)
    key = derive_key(root_key, "blind-index", ctx, index_name)
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(index_message(fields))
    kept = bytearray(mac.finalize()[: (bits + 7) // 8])
    kept[-1] &= (0xFF << ((8 - bits % 8) % 8)) & 0xFF
    return bytes(kept)


def term_int(term: bytes, bits: int) -> int:
    return int.from_bytes(term, "big") >> (8 * len(term) - bits)


# ---------------------------------------------------------------------------------------------
# Keystore file (KEYS.md, "The keystore file, byte for byte")

KEYSTORE_MEMBERS = ["format", "version", "current", "keys"]
ENTRY_MEMBERS = ["version", "createdAt", "status", "key"]
_CREATED_AT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z\Z")
_STD_B64_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\Z")


@dataclass
class KeyEntry:
    version: int
    created_at: str
    status: str
    key: bytes


@dataclass
class Keystore:
    current: int
    keys: list[KeyEntry]

    def key_map(self) -> dict[int, bytes]:
        return {e.version: e.key for e in self.keys}

    def active_versions(self) -> list[int]:
        return [e.version for e in self.keys if e.status == "active"]


def _keystore_error(path: str, what: str) -> SifreDBError:
    return SifreDBError(ERR_KEY, f"keystore {path}: {what}")


def _json_integer(x: Any) -> bool:
    # SPEC GAP: whether `1.0` or `1e0` is "exactly 1" is not stated; a JSON number with an integer
    # value is taken as that integer (what a JS JSON.parse reader would see).
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x == math.floor(x)


def _valid_date(y: int, mo: int, d: int, h: int, mi: int, s: int) -> bool:
    if not (1 <= mo <= 12 and h <= 23 and mi <= 59 and s <= 59):
        return False
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
    return 1 <= d <= days


def parse_keystore(data: bytes, path: str = "keystore") -> Keystore:
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_pairs_to_object,
                         parse_constant=_refuse_constant)
    except (_Refused, UnicodeDecodeError, ValueError, RecursionError):
        raise _keystore_error(path, "not a valid JSON keystore") from None
    if not isinstance(doc, dict) or sorted(doc) != sorted(KEYSTORE_MEMBERS):
        raise _keystore_error(path, "the top level must be an object with format, version, current and keys")
    if doc["format"] != "sifredb-keystore":
        raise _keystore_error(path, "format is not sifredb-keystore")
    if not (_json_integer(doc["version"]) and doc["version"] == 1):
        raise _keystore_error(path, "unsupported keystore version")
    if not isinstance(doc["keys"], list) or not doc["keys"]:
        raise _keystore_error(path, "keys must be a non-empty array")
    entries: list[KeyEntry] = []
    for i, entry in enumerate(doc["keys"]):
        where = f"keys[{i}]"
        if not isinstance(entry, dict) or sorted(entry) != sorted(ENTRY_MEMBERS):
            raise _keystore_error(path, f"{where} must have exactly version, createdAt, status and key")
        version = entry["version"]
        if not (_json_integer(version) and 1 <= version <= 0xFFFFFFFF):
            raise _keystore_error(path, f"{where}.version is not an integer in 1..4294967295")
        version = int(version)
        if any(e.version == version for e in entries):
            raise _keystore_error(path, f"{where}.version appears twice")
        created = entry["createdAt"]
        m = _CREATED_AT.match(created) if isinstance(created, str) else None
        if not m or not _valid_date(*(int(g) for g in m.groups()[:6])):
            raise _keystore_error(path, f"{where}.createdAt is not an ISO timestamp")
        if entry["status"] not in ("active", "retired") or not isinstance(entry["status"], str):
            raise _keystore_error(path, f"{where}.status is not active or retired")
        key = entry["key"]
        if not isinstance(key, str) or not _STD_B64_KEY.match(key):
            raise _keystore_error(path, f"{where}.key is not 32 bytes of padded standard base64")
        entries.append(KeyEntry(version, created, entry["status"], base64.b64decode(key, validate=True)))
    current = doc["current"]
    if not _json_integer(current) or not any(e.version == current and e.status == "active" for e in entries):
        raise _keystore_error(path, "current names no active key version")
    return Keystore(int(current), entries)


def read_keystore(path: str, allow_insecure_permissions: bool = False) -> Keystore:
    try:
        st = os.stat(path)
        if not allow_insecure_permissions and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise _keystore_error(path, "group or others may access it (chmod 600)")
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise _keystore_error(path, "cannot be read") from None
    return parse_keystore(data, path)


def render_keystore(store: Keystore) -> bytes:
    doc = {"format": "sifredb-keystore", "version": 1, "current": store.current, "keys": [
        {"version": e.version, "createdAt": e.created_at, "status": e.status,
         "key": base64.b64encode(e.key).decode("ascii")} for e in store.keys]}
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")


def write_keystore(path: str, store: Keystore) -> None:
    """Atomically: a 0600 temp file in the same directory, fsync, rename, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, render_keystore(store))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# ---------------------------------------------------------------------------------------------
# JSON-lines driver. Values travel as tagged JSON so that no JSON library rounds or reorders them:
#   {"t":"string","v":s} {"t":"number","bits":hex16} {"t":"bigint","v":"-12"} {"t":"boolean","v":b}
#   {"t":"date","bits":hex16} {"t":"bytes","hex":h} {"t":"null"} {"t":"array","v":[…]}
#   {"t":"object","v":[[key, value], …]} {"t":"undefined"} {"t":"hole"}


def from_wire(w: dict) -> Any:
    t = w["t"]
    if t == "string":
        return w["v"]
    if t == "number":
        return struct.unpack(">d", bytes.fromhex(w["bits"]))[0]
    if t == "bigint":
        return int(w["v"])
    if t == "boolean":
        return bool(w["v"])
    if t == "date":
        return JsDate(struct.unpack(">d", bytes.fromhex(w["bits"]))[0])
    if t == "bytes":
        return bytes.fromhex(w["hex"])
    if t == "null":
        return None
    if t == "array":
        return [from_wire(x) for x in w["v"]]
    if t == "object":
        return {k: from_wire(v) for k, v in w["v"]}
    if t == "undefined":
        return UNDEFINED
    if t == "hole":
        return HOLE
    raise ValueError(f"unknown wire type {t}")


def to_wire(v: Any) -> dict:
    if isinstance(v, str):
        return {"t": "string", "v": v}
    if isinstance(v, bool):
        return {"t": "boolean", "v": v}
    if _is_number(v):
        return {"t": "number", "bits": float_bits(v).hex()}
    if _is_bigint(v):
        return {"t": "bigint", "v": str(v)}
    if isinstance(v, JsDate):
        return {"t": "date", "bits": float_bits(v.time).hex()}
    if isinstance(v, bytes):
        return {"t": "bytes", "hex": v.hex()}
    if v is None:
        return {"t": "null"}
    if isinstance(v, list):
        return {"t": "array", "v": [to_wire(x) for x in v]}
    if isinstance(v, dict):
        return {"t": "object", "v": [[k, to_wire(x)] for k, x in v.items()]}
    raise ValueError("not a wire value")


def _ctx(w: dict) -> Context:
    return Context(table=w["table"], column=w["column"], tenant=w.get("tenant"), version=w.get("version", 1))


def _ciphertext(req: dict) -> bytes | str:
    return req["text"] if "text" in req else bytes.fromhex(req["hex"])


def _row_ad(req: dict) -> Any:
    return from_wire(req["rowAd"]) if req.get("rowAd") is not None else None


def _keys(req: dict) -> dict[int, bytes]:
    return {int(v): bytes.fromhex(k) for v, k in req["keys"].items()}


def handle(req: dict) -> dict:
    op = req["op"]
    if op == "context":
        return {"hex": _ctx(req["ctx"]).canonical().hex()}
    if op == "derive":
        return {"hex": derive_key(bytes.fromhex(req["root"]), req["purpose"], _ctx(req["ctx"]), req.get("indexName")).hex()}
    if op == "aad":
        header = bytes.fromhex(req["header"])
        return {"hex": build_aad(header, _ctx(req["ctx"]), _row_ad(req)).hex()}
    if op == "plaintext":
        return {"hex": encode_value(from_wire(req["value"])).hex()}
    if op == "seal":
        nonce = bytes.fromhex(req["nonce"]) if req.get("nonce") is not None else None
        if "plaintext" in req:
            ctx = _ctx(req["ctx"])
            ctx.canonical()
            env = seal_plaintext(bytes.fromhex(req["plaintext"]), ctx, bytes.fromhex(req["root"]),
                                 req["keyVersion"], req["algorithm"], _row_ad(req), nonce)
        else:
            env = seal(from_wire(req["value"]), _ctx(req["ctx"]), bytes.fromhex(req["root"]), req["keyVersion"],
                       req["algorithm"], _row_ad(req), nonce)
        return {"hex": env.hex(), "text": to_text(env)}
    if op == "open":
        value = open_value(_ciphertext(req), _ctx(req["ctx"]), _keys(req), req["reader"], _row_ad(req), req.get("expect"))
        return {"value": to_wire(value)}
    if op == "openPlaintext":
        return {"hex": open_plaintext(_ciphertext(req), _ctx(req["ctx"]), _keys(req), req["reader"], _row_ad(req)).hex()}
    if op == "decodeValue":
        return {"value": to_wire(decode_value(bytes.fromhex(req["plaintext"])))}
    if op == "fromText":
        return {"hex": from_text(req["text"]).hex()}
    if op == "toText":
        return {"text": to_text(bytes.fromhex(req["hex"]))}
    if op == "term":
        fields = [(from_wire(f["value"]), f.get("transforms", [])) for f in req["fields"]]
        term = blind_index_term(bytes.fromhex(req["root"]), _ctx(req["ctx"]), req["name"], req["bits"], fields)
        return {"hex": term.hex(), "int": str(term_int(term, int(req["bits"]))),
                "message": index_message(fields).hex()}
    if op == "readKeystore":
        store = read_keystore(req["path"], req.get("allowInsecurePermissions", False))
        return {"current": store.current, "keys": [
            {"version": e.version, "createdAt": e.created_at, "status": e.status, "key": e.key.hex()} for e in store.keys]}
    if op == "writeKeystore":
        store = Keystore(req["current"], [KeyEntry(e["version"], e["createdAt"], e["status"], bytes.fromhex(e["key"]))
                                          for e in req["keys"]])
        write_keystore(req["path"], store)
        return {}
    if op == "hchacha20":
        return {"hex": hchacha20(bytes.fromhex(req["key"]), bytes.fromhex(req["nonce"])).hex()}
    if op == "numberToString":
        return {"text": js_number_to_string(struct.unpack(">d", bytes.fromhex(req["bits"]))[0])}
    if op == "version":
        import cryptography
        return {"cryptography": cryptography.__version__, "python": sys.version.split()[0],
                "unicode": unicodedata.unidata_version}
    raise ValueError(f"unknown op {op}")


def answer(req: dict) -> dict:
    try:
        return {"id": req.get("id"), "ok": True, **handle(req)}
    except SifreDBError as e:
        return {"id": req.get("id"), "ok": False, "code": e.code, "message": str(e)}


def serve() -> None:
    """One request per line in, one answer per line out, in order. A request that is not valid for
    the driver (a bug in the caller) ends the process with a message on stderr."""
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        reqs = req if isinstance(req, list) else [req]
        out = [answer(r) for r in reqs]
        sys.stdout.write(json.dumps(out if isinstance(req, list) else out[0]) + "\n")
        sys.stdout.flush()


def self_test() -> None:
    """The HChaCha20 test vector of draft-irtf-cfrg-xchacha-03 §2.2.1."""
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    want = "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
    assert hchacha20(key, nonce).hex() == want, "HChaCha20 test vector"


if __name__ == "__main__":
    self_test()
    if sys.argv[1:] == ["serve"]:
        serve()
    elif sys.argv[1:] == ["selftest"]:
        print("ok")
    else:
        sys.exit("usage: sifredb_v1.py serve | selftest")
