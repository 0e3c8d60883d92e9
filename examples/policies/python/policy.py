# sigd's default policy, written in Python: a template for your own policy.
#
# sigd hands every `POST /api/v1/processes/{pid}/signal` to a policy, a
# WebAssembly component built against wit/policy.wit (package
# sigd:policy@0.3.2, world `policy`). This file, with serde_json_reader.py
# beside it, is such a policy. It answers every request as the default policy
# built into sigd (guest/src/*.rs, in Rust) does without settings: the same
# checks in the same order, the same statuses, codes, sentences and bodies,
# and the same authority: a caller with a token signals with sigd's, one
# without is held to kill(2) for its own uid (the host applies the rule). It
# takes no settings (the Rust default policy reads them; see
# docs/policy-authoring.md).
#
# Build it with componentize-py 0.25 (it bundles CPython; the result is
# about 18 MB). From the repository's root:
#
#     scripts/example-policies.sh OUT_DIR python        # -> OUT_DIR/python.wasm
#
# or by hand (componentize-py writes __pycache__ beside the sources):
#
#     pip install componentize-py==0.25.1
#     componentize-py -d wit -w policy componentize \
#         -p examples/policies/python policy -o python.wasm
#     sigd serve --policy python.wasm
#
# `wit_world` and `componentize_py_types` are generated from the WIT when it
# builds; `componentize-py -d wit -w policy bindings DIR` writes them out for
# your editor. To write your own policy, copy this file and change RULES, or
# decide() itself. serde_json_reader.py reads the body exactly as the Rust
# policy's serde_json does, so that even odd bodies get the same answer; a
# policy of your own may just as well use json.loads (and be one file).

import json
import math
import re
from dataclasses import dataclass
from typing import Optional

import wit_world
from componentize_py_types import Err
from wit_world.exports.handler import Request, Response
from wit_world.imports import host
from wit_world.imports.host import ExitStatus_Code, ExitStatus_Signal, KillError, Scope

from serde_json_reader import BadJson, WrongShape, read_fields


# --- The rules: what makes one policy differ from another ------------------


@dataclass(frozen=True)
class Rules:
    # The signals let through (escalation signals included); None lets through
    # every signal Linux delivers. Others get 403 SIGNAL_NOT_ALLOWED.
    allowed_signals: Optional[frozenset]
    # The scopes callers may ask for; others get 403 SCOPE_NOT_ALLOWED.
    allowed_scopes: tuple
    # The scope of a request that names none.
    default_scope: Scope
    # The longest `wait_ms` and `escalate.after_ms` a caller may ask for.
    max_wait_ms: int
    max_escalate_ms: int


# sigd's default: any deliverable signal, any scope (the process alone unless
# asked), waits up to 30 s, escalation up to 10 minutes later.
RULES = Rules(
    allowed_signals=None,
    allowed_scopes=(Scope.PROCESS, Scope.GROUP, Scope.TREE),
    default_scope=Scope.PROCESS,
    max_wait_ms=30_000,
    max_escalate_ms=600_000,
)

SCOPES = {"process": Scope.PROCESS, "group": Scope.GROUP, "tree": Scope.TREE}

# The most pids an answer lists (a scope of thousands gets a count too).
MAX_LISTED = 1000
SCOPE_NAMES = {scope: name for name, scope in SCOPES.items()}


# --- The export ---------------------------------------------------------------


class Handler(wit_world.exports.Handler):
    def configure(self, settings: Optional[str]) -> None:
        if settings is not None:
            raise Err("this example takes no settings: change RULES in its code")

    def handle_signal(self, request: Request) -> Response:
        status, body = decide(RULES, request.pid, request.body, request.caller)
        # Compact JSON, non-ASCII as is: the bytes serde_json writes.
        return Response(status=status, body=json.dumps(body, ensure_ascii=False, separators=(",", ":")))


# --- The decision ---------------------------------------------------------------


class Rejection(Exception):
    """A refused request: its HTTP status, code and sentence."""

    def __init__(self, status: int, code: str, error: str):
        super().__init__(error)
        self.status, self.code, self.error = status, code, error


def decide(rules: Rules, pid_text: str, body: bytes, caller) -> tuple:
    """The HTTP status and JSON body (as a dict) for one request."""
    try:
        return 200, order_signal(rules, pid_text, body, caller)
    except Rejection as rejection:
        return rejection.status, {"error": rejection.error, "code": rejection.code}


def order_signal(rules: Rules, pid_text: str, body: bytes, caller) -> dict:
    # Checks run in the order a caller would fix them: the pid in the path,
    # then the body, then the rules, then whose authority, then the target
    # process, then the signal.
    pid = parse_pid(pid_text)
    realtime = realtime_signals()
    asked = parse_body(body, rules.default_scope, realtime)
    check(asked, rules)
    # A token gives sigd's authority; without one, the caller's own uid's.
    on_behalf_of = None
    if caller.principal is None:
        if caller.peer is None:
            raise not_permitted(pid, None)
        on_behalf_of = caller.peer.uid

    # One host call opens the target and tells whether it is alive.
    opened = host.Process.open_alive(pid)
    if opened is None:
        raise process_not_found(pid)
    process, alive = opened
    with process:  # leaving the block drops the handle (and its pidfd)
        if not alive:
            raise process_not_running(pid)
        try:
            delivered = process.signal(asked.signal, asked.scope, on_behalf_of)
        except Err as refused:
            raise refusal(refused.value, pid, asked.signal, on_behalf_of)
        # Delivered: nothing fails the answer now. An escalation the host
        # would not schedule (the target is gone by now, reaped at once; or
        # the host keeps as many as it may) is answered as not scheduled.
        scheduled = True
        if asked.escalate is not None:
            try:
                process.escalate(
                    asked.escalate.after_ms, asked.escalate.signal, asked.scope, on_behalf_of
                )
            except Err:
                scheduled = False
        exit = None
        if asked.wait_ms is not None:
            exit = exit_body(process.wait_exit(asked.wait_ms), asked.wait_ms)

    answer = {"success": True, "pid": pid, "signal": asked.signal}
    name = signal_name(asked.signal, realtime)
    if name is not None:
        answer["signal_name"] = name
    answer["scope"] = SCOPE_NAMES[asked.scope]
    # At most MAX_LISTED pids, and how many when there are more.
    answer["delivered_to"] = list(delivered)[:MAX_LISTED]
    if len(delivered) > MAX_LISTED:
        answer["delivered_count"] = len(delivered)
    if asked.escalate is not None:
        answer["escalation"] = {"after_ms": asked.escalate.after_ms, "signal": asked.escalate.signal}
        if not scheduled:
            answer["escalation"]["scheduled"] = False
    if exit is not None:
        answer["exit"] = exit
    return answer


def exit_body(ended, wait_ms: int) -> dict:
    """How a waited-for process ended: {"exited": true, "signal": 15}, ..."""
    if ended is None:
        return {"exited": False, "waited_ms": wait_ms}
    if isinstance(ended, ExitStatus_Code):
        return {"exited": True, "code": ended.value}
    if isinstance(ended, ExitStatus_Signal):
        return {"exited": True, "signal": ended.value}
    return {"exited": True}  # it ended, but the kernel no longer says how


def refusal(error: KillError, pid: int, signal: int, uid: Optional[int]) -> Rejection:
    """The answer to the host's refusal to signal `pid` with `signal` (on
    behalf of `uid`, or with sigd's authority)."""
    if error == KillError.NOT_FOUND:
        return process_not_found(pid)
    if error == KillError.INVALID_SIGNAL:
        return invalid_signal(str(signal))
    if error == KillError.PROTECTED:
        return protected_process(pid)
    if error == KillError.PERMISSION_DENIED:
        return permission_denied(pid)
    if error == KillError.NOT_PERMITTED:
        return not_permitted(pid, uid)
    return internal()


def parse_pid(raw: str) -> int:
    """A positive int32 written in plain decimal digits (no sign, no spaces)."""
    digits = raw.lstrip("0")
    if raw == "" or not all("0" <= c <= "9" for c in raw) or digits == "" or len(digits) > 10:
        raise invalid_pid(raw)
    pid = int(digits)
    if pid > 2**31 - 1:
        raise invalid_pid(raw)
    return pid


_realtime = None


def realtime_signals() -> range:
    """SIGRTMIN..=SIGRTMAX of the host's libc, asked once per instance."""
    global _realtime
    if _realtime is None:
        span = host.realtime_signals()
        _realtime = range(span.min, span.max + 1)
    return _realtime


# --- Every answer but success ---------------------------------------------------


def shorten(raw: str) -> str:
    """At most 32 characters of caller input, for echoing in a sentence."""
    return raw if len(raw) <= 32 else raw[:32] + "..."


def invalid_pid(raw: str) -> Rejection:
    return Rejection(400, "INVALID_PID", f'pid must be a positive 32-bit integer, got "{shorten(raw)}"')


def invalid_request(why: str) -> Rejection:
    return Rejection(400, "INVALID_REQUEST", f'the body must be a JSON object like {{"signal": 15}}: {why}')


def invalid_signal(raw: str) -> Rejection:
    return Rejection(400, "INVALID_SIGNAL", f"{shorten(raw)} is not a signal Linux delivers; use {ACCEPTED_FORMS}")


def signal_not_allowed(signal: int) -> Rejection:
    return Rejection(403, "SIGNAL_NOT_ALLOWED", f"this policy does not allow signal {signal}")


def scope_not_allowed(scope: Scope) -> Rejection:
    return Rejection(403, "SCOPE_NOT_ALLOWED", f'this policy does not allow the scope "{SCOPE_NAMES[scope]}"')


def process_not_found(pid: int) -> Rejection:
    return Rejection(404, "PROCESS_NOT_FOUND", f"no process has pid {pid}")


def process_not_running(pid: int) -> Rejection:
    return Rejection(400, "PROCESS_NOT_RUNNING", f"process {pid} has exited and is no longer running")


def protected_process(pid: int) -> Rejection:
    return Rejection(
        403,
        "PROTECTED_PROCESS",
        "sigd never signals pid 1, itself or its ancestors, nor a group or tree "
        f"holding one of them, and the request for process {pid} would",
    )


def permission_denied(pid: int) -> Rejection:
    return Rejection(403, "PERMISSION_DENIED", f"sigd is not permitted to signal process {pid}")


def not_permitted(pid: int, uid: Optional[int]) -> Rejection:
    if uid is None:
        return Rejection(
            403,
            "NOT_PERMITTED",
            f"sigd cannot tell who is asking to signal process {pid} (the connection is "
            "not from this machine, or is from another PID namespace, or from root without "
            "CAP_KILL), and without a token such a caller may signal nothing",
        )
    return Rejection(
        403,
        "NOT_PERMITTED",
        f"uid {uid} may not signal process {pid} (or a process of its group or tree): "
        "kill(2) would refuse it, and a caller without a token has no more authority",
    )


def internal() -> Rejection:
    return Rejection(500, "INTERNAL", "sigd failed to handle the request; see its log")


# --- The request body -----------------------------------------------------------
# {"signal": 15} as the spec has it, plus sigd's optional fields "scope",
# "escalate" ({"after_ms": 5000, "signal": "SIGKILL"}) and "wait_ms".

FIELDS = ("signal", "scope", "escalate", "wait_ms")


@dataclass
class Escalation:
    after_ms: int
    signal: int


@dataclass
class Asked:
    signal: int
    scope: Scope
    escalate: Optional[Escalation]
    wait_ms: Optional[int]


def parse_body(body: bytes, default_scope: Scope, realtime: range) -> Asked:
    try:
        fields = read_fields(body, FIELDS)  # JSON null counts as absent; unknown fields are ignored
    except BadJson:
        raise invalid_request("the body is not valid JSON")
    except WrongShape:  # not an object, or a field given twice
        raise invalid_request("the body is not a JSON object with each field once")
    if fields.get("signal") is None:
        raise invalid_request('the field "signal" is missing')
    signal = parse_signal(fields["signal"], "signal", realtime)

    scope = fields.get("scope")
    if scope is None:
        scope = default_scope
    elif not isinstance(scope, str):
        raise invalid_request('"scope" must be a string')
    elif scope in SCOPES:
        scope = SCOPES[scope]
    else:
        raise invalid_request('"scope" must be "process", "group" or "tree"')

    escalate = fields.get("escalate")
    if escalate is not None:
        if not isinstance(escalate, dict):
            raise invalid_request('"escalate" must be an object like {"after_ms": 5000, "signal": "SIGKILL"}')
        if "after_ms" not in escalate:
            raise invalid_request('"escalate" needs "after_ms"')
        after_ms = milliseconds(escalate["after_ms"], "escalate.after_ms")
        then = escalate.get("signal")  # SIGKILL unless named
        escalate = Escalation(after_ms, 9 if then is None else parse_signal(then, "escalate.signal", realtime))

    wait_ms = fields.get("wait_ms")
    if wait_ms is not None:
        wait_ms = milliseconds(wait_ms, "wait_ms")
    return Asked(signal, scope, escalate, wait_ms)


def check(asked: Asked, rules: Rules) -> None:
    """Hold a valid request to the rules."""
    if rules.allowed_signals is not None:
        signals = [asked.signal] + ([asked.escalate.signal] if asked.escalate else [])
        for signal in signals:
            if signal not in rules.allowed_signals:
                raise signal_not_allowed(signal)
    if asked.scope not in rules.allowed_scopes:
        raise scope_not_allowed(asked.scope)
    if asked.wait_ms is not None and asked.wait_ms > rules.max_wait_ms:
        raise invalid_request(f'"wait_ms" may be at most {rules.max_wait_ms} for this policy')
    if asked.escalate is not None and asked.escalate.after_ms > rules.max_escalate_ms:
        raise invalid_request(f'"escalate.after_ms" may be at most {rules.max_escalate_ms} for this policy')


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(value) -> Optional[int]:
    """The integer a JSON number stands for (15.0 is 15), or None if it has a fraction."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value


def parse_signal(value, field: str, realtime: range) -> int:
    """A signal given as an integer or a name."""
    if isinstance(value, str):
        number = signal_number(value, realtime)
        if number is None:
            raise invalid_signal(json_text(value))
        return number
    if is_number(value) and integer(value) is not None:
        if not is_deliverable(integer(value), realtime):
            raise invalid_signal(json_text(value))
        return integer(value)
    raise invalid_request(f'"{field}" must be an integer or a signal name such as "SIGTERM"')


def milliseconds(value, field: str) -> int:
    """A non-negative whole number of milliseconds that fits in 32 bits."""
    ms = integer(value) if is_number(value) else None
    if ms is None or not 0 <= ms <= 0xFFFF_FFFF:
        raise invalid_request(f'"{field}" must be a whole number of milliseconds')
    return ms


# --- Signal numbers and names ------------------------------------------------------

# The standard signals of Linux on x86-64 and arm64, by number.
STANDARD = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "PWR": 30, "SYS": 31,
}
# Other names Linux accepts for the same numbers.
ALIASES = {"IOT": 6, "CLD": 17, "POLL": 29, "UNUSED": 31}
STANDARD_NAMES = {number: name for name, number in STANDARD.items()}

ACCEPTED_FORMS = (
    'a number (1-31 or SIGRTMIN-SIGRTMAX) or a name such as "SIGTERM", "TERM" or "term", '
    '"RTMIN", "RTMIN+2", "RTMAX-1"'
)

# What Rust's str::trim() trims: Unicode White_Space (str.strip() trims a few more).
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
RT_OFFSET = re.compile(r"(RTMIN\+|RTMAX-)([0-9]{1,3})")


def is_deliverable(signal: int, realtime: range) -> bool:
    """1-31 or a realtime signal (32 and 33 are kept by the C library)."""
    return 1 <= signal <= 31 or signal in realtime


def signal_number(name: str, realtime: range) -> Optional[int]:
    """The number a name stands for: SIG prefix optional, any case, RTMIN+n / RTMAX-n."""
    upper = name.strip(WHITE_SPACE).translate(ASCII_UPPER)  # str.upper() would map more than ASCII
    bare = upper[3:] if upper.startswith("SIG") else upper
    if bare in STANDARD or bare in ALIASES:
        return STANDARD.get(bare) or ALIASES[bare]
    if bare in ("RTMIN", "RTMAX"):
        number = realtime.start if bare == "RTMIN" else realtime.stop - 1
    elif offset := RT_OFFSET.fullmatch(bare):
        base, n = offset.groups()
        number = realtime.start + int(n) if base == "RTMIN+" else realtime.stop - 1 - int(n)
    else:
        return None
    return number if number in realtime else None


def signal_name(signal: int, realtime: range) -> Optional[str]:
    """The name of a deliverable signal (SIGTERM, SIGRTMIN+2), for answers."""
    if signal in STANDARD_NAMES:
        return "SIG" + STANDARD_NAMES[signal]
    if signal == realtime.start:
        return "SIGRTMIN"
    if signal == realtime.stop - 1:
        return "SIGRTMAX"
    if signal in realtime:
        return f"SIGRTMIN+{signal - realtime.start}"
    return None


# --- Writing JSON values as serde_json does ---------------------------------------


def json_text(value) -> str:
    """A string or number as serde_json writes it (to echo it in a sentence)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    # The shortest digits that read back as the same float (repr's), laid out
    # as serde_json does: 1e-5 <= |x| < 1e16 in plain digits, others as 1.5e+300.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(digits) + int(exponent or 0) - len(fraction)  # digits[:point] is the whole part
    digits = digits.rstrip("0")
    sign = "-" if value < 0 else ""
    e = point - 1
    if not -5 <= e <= 15:
        mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
        return f"{sign}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    if len(digits) <= point:
        return f"{sign}{digits}{'0' * (point - len(digits))}.0"
    if point > 0:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}0.{'0' * -point}{digits}"
