# Reading a request body exactly as sigd's Rust policy does, for policy.py.
#
# The Rust policy reads the body with serde_json into a struct of its four
# fields. This module reads it the same way, so that odd bodies (a key
# given twice, a number too big for 64 bits, a string that is not UTF-8, a
# value nested 128 deep) get exactly the Rust policy's answers. That is all it
# is for: a policy of your own may just as well use json.loads.
#
# What serde_json does, and so this: the fields asked for are decoded, and
# every value (unknown fields' too) is read as serde_json reads one: numbers
# too big for 64 bits become floats, and out of range for a float are no JSON;
# strings must be UTF-8 without lone surrogates; values nest at most 127 deep;
# and each object, at any depth, gives each key once (sigd walks the whole
# body for that). A body that is not an object, or gives a key twice, raises
# WrongShape; anything else amiss raises BadJson. Of a body that is not an
# object, serde_json reads only as much as names its type: "[" for an array
# (so "[15" is WrongShape too), the whole token for a string, number, true,
# false or null (so "15 x" is WrongShape, "1e999" and "nul" are BadJson).
# Values are read by Python's json module, which is fast: the part here only
# walks the body's top level, token by token.

import json
import math
import re

MAX_DEPTH = 128  # serde_json's recursion limit: at most 127 nested arrays and objects
# json recurses in C: past several hundred levels it would overflow the wasm
# stack (a trap, so a 500), so a body nesting deeper is read token by token.
SAFE_DEPTH = 400


class BadJson(Exception):
    """The body is not JSON as serde_json reads it."""


class WrongShape(Exception):
    """The body is JSON, but not an object, or it gives a key twice."""


def reject(_constant):
    raise BadJson  # NaN, Infinity and -Infinity are not JSON


def decode_number(text: str):
    """An int if serde_json holds it as one (within u64 or i64), else a float."""
    if "." in text or "e" in text or "E" in text or text == "-0":
        value = float(text)
    elif len(text) <= 21 and -(2**63) <= int(text) < 2**64:
        return int(text)
    else:
        value = float(text)
    if math.isinf(value):
        raise BadJson  # serde_json: number out of range
    return value


def unique_keys(pairs: list) -> dict:
    """An object's pairs as a dict, if it gives each key once."""
    decoded = dict(pairs)
    if len(decoded) != len(pairs):
        raise WrongShape  # a key given twice
    return decoded


KEPT = json.JSONDecoder(
    parse_int=decode_number, parse_float=decode_number, parse_constant=reject, object_pairs_hook=unique_keys
)

# One token after optional whitespace ('"' starts a string). A number may not
# run on into what would make it malformed: serde_json reads "01", "1." and
# "1e" as no number at all.
TOKEN = re.compile(
    r"""[ \t\n\r]*(?:
      (?P<punct>[\[\]{},:"])
    | (?P<number>-?(?:0|[1-9][0-9]*)(?:(?:\.[0-9]+)?[eE][-+]?[0-9]+|\.[0-9]+(?![eE])|(?![0-9.eE])))
    | (?P<word>true|false|null)
    )""",
    re.VERBOSE,
)
WHITESPACE = re.compile(r"[ \t\n\r]*")
STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
NOT_BRACKET = re.compile(r"[^\[\]{}]+")
INNERMOST = re.compile(r"\[\]|\{\}")
SURROGATE = re.compile("[\ud800-\udfff]")
ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def read_fields(body: bytes, names: tuple) -> dict:
    """The fields of the object `body` that are named in `names`, decoded
    (None for JSON null); the others are read and dropped. Raises BadJson or WrongShape."""
    reader = JsonReader(body, names)
    fields = reader.fields()
    reader.end()
    return fields


def nests_at_most(text: str, limit: int) -> bool:
    """Whether the brackets outside strings surely nest at most `limit` deep."""
    brackets = NOT_BRACKET.sub("", STRING.sub("", text))
    for removed in range(16):  # levels of innermost pairs removed so far
        if removed + len(brackets) <= limit:
            return True
        brackets = INNERMOST.sub("", brackets)
    return False  # deeper than JSON usually goes, or unbalanced: not sure


def check_kept(value, depth: int) -> None:
    """serde_json's limits on a decoded value `depth` containers deep."""
    if isinstance(value, str):
        if SURROGATE.search(value):
            raise BadJson  # a lone surrogate, or a byte that is not UTF-8
    elif isinstance(value, (list, dict)):
        if depth + 1 >= MAX_DEPTH:
            raise BadJson  # serde_json: recursion limit exceeded
        for key in value if isinstance(value, dict) else ():
            check_kept(key, depth)
        for item in value.values() if isinstance(value, dict) else value:
            check_kept(item, depth + 1)


class JsonReader:
    def __init__(self, body: bytes, names: tuple):
        # Bytes that are not UTF-8 become lone surrogates, which no string may hold.
        self.text = body.decode("utf-8", "surrogateescape")
        self.names = names
        self.at = 0
        self.shallow = nests_at_most(self.text, SAFE_DEPTH)

    def next(self) -> re.Match:
        token = TOKEN.match(self.text, self.at)
        if token is None:
            raise BadJson
        self.at = token.end()
        return token

    def take(self, punct: str) -> bool:
        """Read `punct` if it comes next."""
        token = TOKEN.match(self.text, self.at)
        if token is None or token.group("punct") != punct:
            return False
        self.at = token.end()
        return True

    def expect(self, punct: str) -> None:
        if not self.take(punct):
            raise BadJson

    def string(self, kept: bool) -> str:
        """The rest of a string whose opening quote was just read."""
        try:
            text, self.at = json.decoder.scanstring(self.text, self.at, True)
        except ValueError:
            raise BadJson
        if kept:
            check_kept(text, 0)
        return text

    def end(self) -> None:
        if WHITESPACE.match(self.text, self.at).end() != len(self.text):
            raise BadJson

    def keys(self):
        """Go through an object whose "{" was just read: once per key, then
        past its "}". The caller reads the colon and value after each key."""
        if self.take("}"):
            return
        while True:
            self.expect('"')
            yield self.string(kept=True)
            punct = self.next().group("punct")
            if punct == "}":
                return
            if punct != ",":
                raise BadJson

    def fields(self) -> dict:
        """The body, read as serde_json reads a struct of `names` from an object."""
        token = self.next()
        punct = token.group("punct")
        if punct == "{":
            fields, seen = {}, set()
            for key in self.keys():
                if key in seen:
                    raise WrongShape  # a key given twice (serde sees it before the colon)
                seen.add(key)
                self.expect(":")
                value = self.value(1)  # unknown fields' values are read all the same
                if key in self.names:
                    fields[key] = value
            return fields
        # Another value: serde_json reads only as much of it as names its
        # type, and then no more of the body. An array is named by its "[".
        if punct == "[":
            raise WrongShape
        if punct == '"':
            self.string(kept=True)
        elif punct is not None:
            raise BadJson
        elif token.group("number") is not None:
            decode_number(token.group("number"))
        raise WrongShape  # a string, number or word: well-formed, but no object

    def value(self, depth: int):
        """A value to keep, inside `depth` arrays and objects: decoded."""
        start = self.at = WHITESPACE.match(self.text, self.at).end()
        if not self.shallow:
            if depth + self.skip_tokens() >= MAX_DEPTH:
                raise BadJson
            self.at = start
        try:
            value, self.at = KEPT.raw_decode(self.text, start)
        except ValueError:
            raise BadJson
        # Walk it only if it might break a limit (a long walk costs time).
        raw = self.text[start : self.at]
        brackets = raw.count("[") + raw.count("{")
        if depth + brackets >= MAX_DEPTH or SURROGATE.search(raw) or ESCAPED_SURROGATE.search(raw):
            check_kept(value, depth)
        return value

    def skip_tokens(self) -> int:
        """Read past a value token by token, without recursion (for bodies
        nesting deeper than json's C code may recurse); returns how many
        arrays and objects deep it went."""
        closers = []  # what closes each array or object we are in, innermost last
        deepest = 0
        while True:
            punct = self.next().group("punct")
            if punct in ("[", "{"):
                close = "]" if punct == "[" else "}"
                if not self.take(close):  # an empty one is a whole value
                    closers.append(close)
                    deepest = max(deepest, len(closers))
                    if close == "}":
                        self.expect('"')
                        self.string(kept=False)
                        self.expect(":")
                    continue
                deepest = max(deepest, len(closers) + 1)
            elif punct == '"':
                self.string(kept=False)
            elif punct is not None:
                raise BadJson
            # A whole value was read: close what it ends, or go on to the next.
            while closers:
                punct = self.next().group("punct")
                if punct == ",":
                    if closers[-1] == "}":
                        self.expect('"')
                        self.string(kept=False)
                        self.expect(":")
                    break
                if punct != closers.pop():
                    raise BadJson
            if not closers:
                return deepest
