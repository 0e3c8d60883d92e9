// sigd's default policy, written in JavaScript: a template for your own policy.
//
// sigd hands every `POST /api/v1/processes/{pid}/signal` to a policy, a
// WebAssembly component built against wit/policy.wit (package
// sigd:policy@0.3.2, world `policy`). This file is such a policy. It answers
// every request as the default policy built into sigd (guest/src/*.rs, in
// Rust) does without settings: the same checks in the same order, the same
// statuses, codes, sentences and bodies, and the same authority: a caller with
// a token signals with sigd's, one without is held to kill(2) for its own uid
// (the host applies the rule). It takes no settings (the Rust default policy
// reads them; see docs/policy-authoring.md).
//
// Build it with ComponentizeJS 0.23 (it bundles StarlingMonkey, a SpiderMonkey
// build; the result is about 12 MB). From the repository's root:
//
//     scripts/example-policies.sh OUT_DIR javascript    # -> OUT_DIR/javascript.wasm
//
// or by hand, in a copy of this directory (package.json pins the tool;
// `--disable http fetch-event` keeps out wasi:http, which sigd does not link):
//
//     (cd examples/policies/javascript && npm ci)
//     examples/policies/javascript/node_modules/.bin/componentize-js \
//         --wit wit --world-name policy --disable http fetch-event \
//         -o javascript.wasm examples/policies/javascript/policy.js
//     sigd serve --policy javascript.wasm
//
// How WIT looks from here: the import `sigd:policy/host@0.3.2` gives
// functions and the `Process` class; option<T> is T or undefined; enums are
// strings ('zombie', 'not-found'); a tuple is an array; a result's error is
// thrown (its `payload` is the kill-error); list<s32> is an Int32Array; the
// export `handler` is an object with `configure` (throw to reject the
// settings) and `handleSignal`.
// To write your own policy, copy this file and
// change RULES, or decide() itself. The part at the end reads JSON exactly as
// the Rust policy's serde_json does, so that even odd bodies get the same
// answer; a policy of your own may just as well use JSON.parse.

import { Process, realtimeSignals } from 'sigd:policy/host@0.3.2';

// --- The rules: what makes one policy differ from another ------------------

// sigd's default: any deliverable signal, any scope (the process alone unless
// asked), waits up to 30 s, escalation up to 10 minutes later.
const RULES = {
  // The signals let through (escalation signals included); null lets through
  // every signal Linux delivers. Others get 403 SIGNAL_NOT_ALLOWED.
  allowedSignals: null,
  // The scopes callers may ask for; others get 403 SCOPE_NOT_ALLOWED.
  allowedScopes: ['process', 'group', 'tree'],
  // The scope of a request that names none.
  defaultScope: 'process',
  // The longest `wait_ms` and `escalate.after_ms` a caller may ask for.
  maxWaitMs: 30_000,
  maxEscalateMs: 600_000,
};

const SCOPES = ['process', 'group', 'tree'];

// The most pids an answer lists (a scope of thousands gets a count too).
const MAX_LISTED = 1000;

// --- The export ---------------------------------------------------------------

export const handler = {
  configure(settings) {
    if (settings !== undefined) throw 'this example takes no settings: change RULES in its code';
  },

  handleSignal(request) {
    const [status, body] = decide(RULES, request.pid, request.body, request.caller);
    // JSON.stringify writes what serde_json writes: compact, non-ASCII as is.
    return { status, body: JSON.stringify(body) };
  },
};

// --- The decision ---------------------------------------------------------------

/** A refused request: its HTTP status, code and sentence. */
class Rejection extends Error {
  constructor(status, code, error) {
    super(error);
    this.status = status;
    this.code = code;
    this.error = error;
  }
}

/** The HTTP status and JSON body (as an object) for one request. */
function decide(rules, pidText, body, caller) {
  try {
    return [200, orderSignal(rules, pidText, body, caller)];
  } catch (error) {
    if (!(error instanceof Rejection)) throw error; // a bug: sigd answers 500
    return [error.status, { error: error.error, code: error.code }];
  }
}

function orderSignal(rules, pidText, body, caller) {
  // Checks run in the order a caller would fix them: the pid in the path,
  // then the body, then the rules, then whose authority, then the target
  // process, then the signal.
  const pid = parsePid(pidText);
  const realtime = realtimeRange();
  const asked = parseBody(body, rules.defaultScope, realtime);
  check(asked, rules);
  // A token gives sigd's authority; without one, the caller's own uid's.
  let onBehalfOf;
  if (caller.principal === undefined) {
    if (caller.peer === undefined) throw notPermitted(pid, undefined);
    onBehalfOf = caller.peer.uid;
  }

  // One host call opens the target and tells whether it is alive.
  const opened = Process.openAlive(pid);
  if (opened === undefined) throw processNotFound(pid);
  const [process, alive] = opened;
  let delivered;
  let exit;
  let scheduled = true;
  try {
    if (!alive) throw processNotRunning(pid);
    delivered = orHostRefusal(pid, asked.signal, onBehalfOf, () =>
      process.signal(asked.signal, asked.scope, onBehalfOf));
    // Delivered: nothing fails the answer now. An escalation the host
    // would not schedule (the target is gone by now, reaped at once; or the
    // host keeps as many as it may) is answered as not scheduled.
    if (asked.escalate) {
      const { afterMs, signal } = asked.escalate;
      try {
        process.escalate(afterMs, signal, asked.scope, onBehalfOf);
      } catch (error) {
        if (error?.payload === undefined) throw error; // not the host's refusal: a bug
        scheduled = false;
      }
    }
    if (asked.waitMs !== undefined) exit = exitBody(process.waitExit(asked.waitMs), asked.waitMs);
  } finally {
    process[Symbol.dispose](); // drop the handle (and its pidfd) now
  }

  const answer = { success: true, pid, signal: asked.signal };
  const name = signalName(asked.signal, realtime);
  if (name !== undefined) answer.signal_name = name;
  answer.scope = asked.scope;
  // At most MAX_LISTED pids, and how many when there are more.
  answer.delivered_to = Array.from(delivered).slice(0, MAX_LISTED);
  if (delivered.length > MAX_LISTED) answer.delivered_count = delivered.length;
  if (asked.escalate) {
    answer.escalation = { after_ms: asked.escalate.afterMs, signal: asked.escalate.signal };
    if (!scheduled) answer.escalation.scheduled = false;
  }
  if (exit !== undefined) answer.exit = exit;
  return answer;
}

/** How a waited-for process ended: {"exited": true, "signal": 15}, ... */
function exitBody(ended, waitMs) {
  if (ended === undefined) return { exited: false, waited_ms: waitMs };
  if (ended.tag === 'code') return { exited: true, code: ended.val };
  if (ended.tag === 'signal') return { exited: true, signal: ended.val };
  return { exited: true }; // it ended, but the kernel no longer says how
}

/** call(), with the host's refusal to signal `pid` with `signal` (on behalf
 * of `uid`, or with sigd's authority) turned into an answer. */
function orHostRefusal(pid, signal, uid, call) {
  try {
    return call();
  } catch (error) {
    switch (error?.payload) {
      case 'not-found': throw processNotFound(pid);
      case 'invalid-signal': throw invalidSignal(String(signal));
      case 'protected': throw protectedProcess(pid);
      case 'permission-denied': throw permissionDenied(pid);
      case 'not-permitted': throw notPermitted(pid, uid);
      case 'failed': throw internal();
      default: throw error;
    }
  }
}

/** A positive int32 written in plain decimal digits (no sign, no spaces). */
function parsePid(raw) {
  const digits = raw.replace(/^0+/, '');
  if (!/^[0-9]+$/.test(raw) || digits === '' || digits.length > 10 || Number(digits) > 2 ** 31 - 1) {
    throw invalidPid(raw);
  }
  return Number(digits);
}

let realtimeAsked;

/** SIGRTMIN..=SIGRTMAX of the host's libc ({min, max}), asked once per instance. */
function realtimeRange() {
  realtimeAsked ??= realtimeSignals();
  return realtimeAsked;
}

// --- Every answer but success ---------------------------------------------------

/** At most 32 characters of caller input, for echoing in a sentence. */
function shorten(raw) {
  let count = 0;
  let end = 0; // in UTF-16 code units
  for (const char of raw) {
    if (count === 32) return raw.slice(0, end) + '...';
    count += 1;
    end += char.length;
  }
  return raw;
}

const invalidPid = (raw) =>
  new Rejection(400, 'INVALID_PID', `pid must be a positive 32-bit integer, got "${shorten(raw)}"`);
const invalidRequest = (why) =>
  new Rejection(400, 'INVALID_REQUEST', `the body must be a JSON object like {"signal": 15}: ${why}`);
const invalidSignal = (raw) =>
  new Rejection(400, 'INVALID_SIGNAL', `${shorten(raw)} is not a signal Linux delivers; use ${ACCEPTED_FORMS}`);
const signalNotAllowed = (signal) =>
  new Rejection(403, 'SIGNAL_NOT_ALLOWED', `this policy does not allow signal ${signal}`);
const scopeNotAllowed = (scope) =>
  new Rejection(403, 'SCOPE_NOT_ALLOWED', `this policy does not allow the scope "${scope}"`);
const processNotFound = (pid) => new Rejection(404, 'PROCESS_NOT_FOUND', `no process has pid ${pid}`);
const processNotRunning = (pid) =>
  new Rejection(400, 'PROCESS_NOT_RUNNING', `process ${pid} has exited and is no longer running`);
const protectedProcess = (pid) =>
  new Rejection(
    403,
    'PROTECTED_PROCESS',
    'sigd never signals pid 1, itself or its ancestors, nor a group or tree ' +
      `holding one of them, and the request for process ${pid} would`,
  );
const permissionDenied = (pid) =>
  new Rejection(403, 'PERMISSION_DENIED', `sigd is not permitted to signal process ${pid}`);
const notPermitted = (pid, uid) =>
  uid === undefined
    ? new Rejection(
      403,
      'NOT_PERMITTED',
      `sigd cannot tell who is asking to signal process ${pid} (the connection is ` +
        'not from this machine, or is from another PID namespace, or from root without ' +
        'CAP_KILL), and without a token such a caller may signal nothing',
    )
    : new Rejection(
      403,
      'NOT_PERMITTED',
      `uid ${uid} may not signal process ${pid} (or a process of its group or tree): ` +
        'kill(2) would refuse it, and a caller without a token has no more authority',
    );
const internal = () => new Rejection(500, 'INTERNAL', 'sigd failed to handle the request; see its log');

// --- The request body -----------------------------------------------------------
// {"signal": 15} as the spec has it, plus sigd's optional fields "scope",
// "escalate" ({"after_ms": 5000, "signal": "SIGKILL"}) and "wait_ms".

function parseBody(body, defaultScope, realtime) {
  const fields = readFields(body); // JSON null counts as absent; unknown fields are ignored
  if (fields.signal == null) throw invalidRequest('the field "signal" is missing');
  const signal = parseSignal(fields.signal, 'signal', realtime);

  let scope = fields.scope ?? defaultScope;
  if (typeof scope !== 'string') throw invalidRequest('"scope" must be a string');
  if (!SCOPES.includes(scope)) throw invalidRequest('"scope" must be "process", "group" or "tree"');

  let escalate = fields.escalate ?? undefined;
  if (escalate !== undefined) {
    if (!isObject(escalate)) {
      throw invalidRequest('"escalate" must be an object like {"after_ms": 5000, "signal": "SIGKILL"}');
    }
    if (!Object.hasOwn(escalate, 'after_ms')) throw invalidRequest('"escalate" needs "after_ms"');
    const afterMs = milliseconds(escalate.after_ms, 'escalate.after_ms');
    const then = Object.hasOwn(escalate, 'signal') ? escalate.signal : null; // SIGKILL unless named
    escalate = { afterMs, signal: then === null ? 9 : parseSignal(then, 'escalate.signal', realtime) };
  }

  const waitMs = fields.wait_ms == null ? undefined : milliseconds(fields.wait_ms, 'wait_ms');
  return { signal, scope, escalate, waitMs };
}

/** Whether a decoded JSON value is an object (not an array, nor a JsonNumber). */
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber);
}

/** Hold a valid request to the rules. */
function check(asked, rules) {
  if (rules.allowedSignals !== null) {
    const signals = asked.escalate ? [asked.signal, asked.escalate.signal] : [asked.signal];
    const refused = signals.find((signal) => !rules.allowedSignals.includes(signal));
    if (refused !== undefined) throw signalNotAllowed(refused);
  }
  if (!rules.allowedScopes.includes(asked.scope)) throw scopeNotAllowed(asked.scope);
  if (asked.waitMs !== undefined && asked.waitMs > rules.maxWaitMs) {
    throw invalidRequest(`"wait_ms" may be at most ${rules.maxWaitMs} for this policy`);
  }
  if (asked.escalate && asked.escalate.afterMs > rules.maxEscalateMs) {
    throw invalidRequest(`"escalate.after_ms" may be at most ${rules.maxEscalateMs} for this policy`);
  }
}

/** A signal given as an integer or a name. */
function parseSignal(value, field, realtime) {
  if (typeof value === 'string') {
    const number = signalNumber(value, realtime);
    if (number === undefined) throw invalidSignal(JSON.stringify(value));
    return number;
  }
  const whole = value instanceof JsonNumber ? value.integer() : undefined;
  if (whole === undefined) throw invalidRequest(`"${field}" must be an integer or a signal name such as "SIGTERM"`);
  if (!isDeliverable(whole, realtime)) throw invalidSignal(value.toString());
  return Number(whole);
}

/** A non-negative whole number of milliseconds that fits in 32 bits. */
function milliseconds(value, field) {
  const ms = value instanceof JsonNumber ? value.integer() : undefined;
  if (ms === undefined || ms < 0n || ms > 0xffff_ffffn) {
    throw invalidRequest(`"${field}" must be a whole number of milliseconds`);
  }
  return Number(ms);
}

// --- Signal numbers and names ------------------------------------------------------

// The standard signals of Linux on x86-64 and arm64, by number.
const STANDARD = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, BUS: 7, FPE: 8,
  KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15,
  STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22,
  URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29,
  PWR: 30, SYS: 31,
};
// Other names Linux accepts for the same numbers.
const ALIASES = { IOT: 6, CLD: 17, POLL: 29, UNUSED: 31 };
const STANDARD_NAMES = Object.fromEntries(Object.entries(STANDARD).map(([name, number]) => [number, name]));

const ACCEPTED_FORMS =
  'a number (1-31 or SIGRTMIN-SIGRTMAX) or a name such as "SIGTERM", "TERM" or "term", ' +
  '"RTMIN", "RTMIN+2", "RTMAX-1"';

// What Rust's str::trim() trims: Unicode White_Space (String.prototype.trim() differs a little).
const TRIM = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
const RT_OFFSET = /^(RTMIN\+|RTMAX-)([0-9]{1,3})$/;

/** 1-31 or a realtime signal (32 and 33 are kept by the C library); `signal` is a BigInt. */
function isDeliverable(signal, realtime) {
  return (signal >= 1n && signal <= 31n) || (signal >= BigInt(realtime.min) && signal <= BigInt(realtime.max));
}

/** The number a name stands for: SIG prefix optional, any case, RTMIN+n / RTMAX-n. */
function signalNumber(name, realtime) {
  const trimmed = name.replace(TRIM, '');
  if (trimmed.length > 12) return undefined; // longer than "SIGRTMIN+999": no name (and no time spent on it)
  // toUpperCase() would map more than ASCII (a dotless i to I, for one).
  const upper = trimmed.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
  const bare = upper.startsWith('SIG') ? upper.slice(3) : upper;
  if (Object.hasOwn(STANDARD, bare)) return STANDARD[bare];
  if (Object.hasOwn(ALIASES, bare)) return ALIASES[bare];
  let number;
  const offset = RT_OFFSET.exec(bare);
  if (bare === 'RTMIN') number = realtime.min;
  else if (bare === 'RTMAX') number = realtime.max;
  else if (offset) number = offset[1] === 'RTMIN+' ? realtime.min + Number(offset[2]) : realtime.max - Number(offset[2]);
  else return undefined;
  return number >= realtime.min && number <= realtime.max ? number : undefined;
}

/** The name of a deliverable signal (SIGTERM, SIGRTMIN+2), for answers. */
function signalName(signal, realtime) {
  if (Object.hasOwn(STANDARD_NAMES, signal)) return 'SIG' + STANDARD_NAMES[signal];
  if (signal === realtime.min) return 'SIGRTMIN';
  if (signal === realtime.max) return 'SIGRTMAX';
  if (signal > realtime.min && signal < realtime.max) return `SIGRTMIN+${signal - realtime.min}`;
  return undefined;
}

// --- Reading JSON as serde_json does ------------------------------------------------
// The Rust policy reads the body into a struct of its four fields with
// serde_json. So that odd bodies get the same answer too, this reads it the
// same way: only those fields are decoded, and every value (unknown fields'
// too: sigd walks the whole body) is checked as serde_json checks one: numbers
// keep whether they were integers within 64 bits (JsonNumber); strings must be
// UTF-8 without lone surrogates; values nest at most 127 deep; each object, at
// any depth, gives each key once. A body that is not an object, or gives a key
// twice, is NOT_AN_OBJECT; anything else amiss is NOT_JSON. Of a body that is not an object, serde_json reads
// only as much as names its type: "[" for an array (so "[15" is NOT_AN_OBJECT
// too), the whole token for a string, number, true, false or null (so "15 x"
// is NOT_AN_OBJECT, "1e999" and "nul" are NOT_JSON). Values are read by
// JSON.parse, which is fast: the part here only walks the body's top level.

const FIELDS = ['signal', 'scope', 'escalate', 'wait_ms'];
const [CHECKED, DECODED] = ['checked', 'decoded'];
// Only the inside of "escalate" is read; any other field, known or not, is
// only checked as serde_json checks a value (sigd walks the whole body).
const readAs = (field) => (field === 'escalate' ? DECODED : CHECKED);
const NOT_JSON = 'the body is not valid JSON';
const NOT_AN_OBJECT = 'the body is not a JSON object with each field once';
const MAX_DEPTH = 128; // serde_json's recursion limit: at most 127 nested arrays and objects

class BadJson extends Error {}
class WrongShape extends Error {}

/** A JSON number, kept as written: serde_json holds it as an integer if it
 * is one within u64 or i64, else as a float. */
class JsonNumber {
  constructor(text) {
    if (!Number.isFinite(Number(text))) throw new BadJson(); // serde_json: number out of range
    this.text = text;
  }

  /** An integer as a BigInt, or a float as a Number. */
  value() {
    if (!/[.eE]/.test(this.text) && this.text !== '-0') {
      const int = BigInt(this.text);
      if (int >= -(2n ** 63n) && int < 2n ** 64n) return int;
    }
    return Number(this.text);
  }

  /** The integer it stands for (15.0 is 15), as a BigInt; undefined if it has a fraction. */
  integer() {
    const value = this.value();
    if (typeof value === 'bigint') return value;
    return Number.isInteger(value) ? BigInt(value) : undefined;
  }

  /** As serde_json writes it (to echo it in a sentence). */
  toString() {
    const value = this.value();
    return typeof value === 'bigint' ? String(value) : floatText(value);
  }
}

// One token after optional whitespace: punctuation, a string, a number or a
// word. A number may not run on into what would make it malformed: serde_json
// reads "01", "1." and "1e" as no number at all.
const TOKEN = new RegExp(
  String.raw`[ \t\n\r]*(?:([\[\]{},:])` +
    String.raw`|("[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*")` +
    String.raw`|(-?(?:0|[1-9][0-9]*)(?:(?:\.[0-9]+)?[eE][-+]?[0-9]+|\.[0-9]+(?![eE])|(?![0-9.eE])))` +
    String.raw`|(true|false|null))`,
  'y',
);
// For skipping: strings loosely (JSON.parse checks them), and stretches of
// text that take strings and arrays and objects nesting at most three deep
// whole; then runs of opening or closing brackets.
const STR = String.raw`"[^"\\]*(?:\\[^][^"\\]*)*"`;
let WHOLE = ''; // arrays and objects nesting at most so deep
for (let level = 1; level <= 3; level++) {
  const inside = String.raw`(?:[^"[\]{}]|${STR}${WHOLE ? '|' + WHOLE : ''})*`;
  WHOLE = String.raw`\[${inside}\]|\{${inside}\}`;
}
const STRETCH = new RegExp(String.raw`(?:[^"[\]{}]+|${STR}|${WHOLE})*`, 'y');
// Opening brackets of one kind; each "{" with its first key and colon, if that is simple.
const OPENING = /\[+|(?:\{[ \t\n\r]*(?:"[^"\\[\]{}]*"[ \t\n\r]*:[ \t\n\r]*)?)+/y;
const STRINGS = new RegExp(STR, 'g');
const NOT_BRACKET = /[^[\]{}]+/g;
const INNERMOST = /\[\]|\{\}/g; // in brackets alone
const CLOSING = /[\]}]+/y;
const WHITESPACE_TO_END = /[ \t\n\r]*$/y;
// A number that may be out of range, or an escaped surrogate that may be lone.
const MAY_BREAK_A_LIMIT = /[0-9]{100}|[eE][-+]?[0-9]{3}|\\u[dD][89a-fA-F]/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LENIENT_UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** The known fields of a body, with null for JSON null. */
function readFields(body) {
  const reader = new JsonReader(decodeBody(body));
  try {
    const fields = reader.fields();
    reader.end();
    return fields;
  } catch (error) {
    if (error instanceof BadJson || error instanceof SyntaxError) throw invalidRequest(NOT_JSON);
    if (error instanceof WrongShape) throw invalidRequest(NOT_AN_OBJECT);
    throw error;
  }
}

/** The body as text. What is not UTF-8 becomes lone surrogates (U+DCxx),
 * which no string may hold: reading one is NOT_JSON. */
function decodeBody(bytes) {
  try {
    return UTF8.decode(bytes);
  } catch {
    // The lenient decoder's U+FFFD marks each stretch that is not UTF-8,
    // unless the body holds a real U+FFFD too: then go byte by byte.
    if (!binary(bytes).includes('\xef\xbf\xbd')) return LENIENT_UTF8.decode(bytes).split('\ufffd').join('\udcff');
    let text = '';
    let start = 0; // of the valid run not yet decoded
    for (let i = 0; i < bytes.length; ) {
      const length = utf8Length(bytes, i);
      if (length > 0) {
        i += length;
        continue;
      }
      text += UTF8.decode(bytes.subarray(start, i)) + String.fromCharCode(0xdc00 + bytes[i]);
      start = i += 1;
    }
    return text + UTF8.decode(bytes.subarray(start));
  }
}

/** Bytes as a string of the same length, one character each. */
function binary(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  return text;
}

/** The length of the UTF-8 sequence at `i`, or 0 if there is none there. */
function utf8Length(bytes, i) {
  const lead = bytes[i];
  if (lead < 0x80) return 1;
  const length = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
  // The second byte's range rules out overlong forms, surrogates and code points past U+10FFFF.
  const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
  const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
  if (length === 0 || !(bytes[i + 1] >= low && bytes[i + 1] <= high)) return 0;
  for (let k = 2; k < length; k++) if (!(bytes[i + k] >= 0x80 && bytes[i + k] <= 0xbf)) return 0;
  return length;
}

/** A kept string, from its token (quotes and escapes included). */
function decodeString(token) {
  const text = JSON.parse(token);
  if (!text.isWellFormed()) throw new BadJson(); // a lone surrogate, or a byte that is not UTF-8
  return text;
}

/** JSON.parse's reviver for kept values: numbers as JsonNumber, strings and keys checked. */
function keep(key, value, context) {
  if (!key.isWellFormed() || (typeof value === 'string' && !value.isWellFormed())) throw new BadJson();
  if (typeof value !== 'number') return value;
  if (!Number.isFinite(value)) throw new BadJson(); // serde_json: number out of range
  return Object.assign(Object.create(JsonNumber.prototype), { text: context.source });
}

class JsonReader {
  constructor(text) {
    this.text = text;
    this.at = 0;
  }

  /** The next token: [punctuation, string, number, word], one of them set. */
  next() {
    TOKEN.lastIndex = this.at;
    const token = TOKEN.exec(this.text);
    if (token === null) throw new BadJson();
    this.at = TOKEN.lastIndex;
    return token.slice(1);
  }

  /** Read `punct` if it comes next. */
  take(punct) {
    TOKEN.lastIndex = this.at;
    const token = TOKEN.exec(this.text);
    if (token?.[1] !== punct) return false;
    this.at = TOKEN.lastIndex;
    return true;
  }

  expect(punct) {
    if (this.next()[0] !== punct) throw new BadJson();
  }

  end() {
    WHITESPACE_TO_END.lastIndex = this.at;
    if (!WHITESPACE_TO_END.test(this.text)) throw new BadJson();
  }

  /** Go through an object whose "{" was just read: once per key, then past
   * its "}". The caller reads the colon and value after each key. */
  *keys() {
    if (this.take('}')) return;
    for (;;) {
      const [, string] = this.next();
      if (string === undefined) throw new BadJson();
      yield decodeString(string);
      const [punct] = this.next();
      if (punct === '}') return;
      if (punct !== ',') throw new BadJson();
    }
  }

  /** The body, read as serde_json reads a struct of FIELDS from an object. */
  fields() {
    const [punct, string, number] = this.next();
    if (punct === '{') {
      const fields = {};
      const seen = new Set();
      for (const key of this.keys()) {
        if (seen.has(key)) throw new WrongShape(); // a key given twice (serde sees it before the colon)
        seen.add(key);
        this.expect(':');
        const value = this.value(1, readAs(key));
        if (FIELDS.includes(key)) fields[key] = value;
      }
      return fields;
    }
    // Another value: serde_json reads only as much of it as names its type,
    // and then no more of the body. An array is named by its "[".
    if (punct === '[') throw new WrongShape();
    if (punct !== undefined) throw new BadJson();
    if (string !== undefined) decodeString(string);
    if (number !== undefined) new JsonNumber(number);
    throw new WrongShape(); // a string, number or word: well-formed, but no object
  }

  /** A value inside `depth` arrays and objects, read `how`: CHECKED
   * (checked as serde_json checks a value; arrays and objects come back as
   * JSON.parse gives them) or DECODED (numbers inside arrays and objects too
   * as JsonNumber). An object in it that gives a key twice is WrongShape. */
  value(depth, how) {
    const start = this.at;
    const [punct, string, number, word] = this.next();
    if (punct === '[' || punct === '{') {
      const deepest = this.skipContainer();
      const source = this.text.slice(start, this.at);
      if (depth + deepest + 3 >= MAX_DEPTH && depth + nesting(source, MAX_DEPTH) >= MAX_DEPTH) {
        throw new BadJson(); // serde_json: recursion limit exceeded
      }
      // The reviver checks each string and number: only where it must (it takes time).
      const value =
        how === DECODED || MAY_BREAK_A_LIMIT.test(source) || !source.isWellFormed()
          ? JSON.parse(source, keep)
          : JSON.parse(source);
      if (source.includes('{')) checkUniqueKeys(source);
      return value;
    }
    if (punct !== undefined) throw new BadJson();
    if (string !== undefined) return decodeString(string);
    if (number !== undefined) return new JsonNumber(number);
    return JSON.parse(word);
  }

  /** Read to the end of the array or object whose bracket was just read,
   * minding only brackets and strings (JSON.parse checks the rest); returns
   * how deep it nests, give or take the 3 levels a stretch may hide. Runs of
   * text go at once, not a token at a time: in wasm, SpiderMonkey only
   * interprets JavaScript (and its own regexp replace and split). */
  skipContainer() {
    let open = this.text[this.at - 1] === '[' ? ']' : '}'; // what each open bracket needs, innermost last
    let deepest = 1;
    for (;;) {
      STRETCH.lastIndex = this.at;
      STRETCH.test(this.text);
      this.at = STRETCH.lastIndex;
      OPENING.lastIndex = this.at;
      if (OPENING.test(this.text)) {
        const run = this.text.slice(this.at, OPENING.lastIndex);
        open += run[0] === '[' ? ']'.repeat(run.length) : '}'.repeat(run.split('{').length - 1);
        deepest = Math.max(deepest, open.length);
        this.at = OPENING.lastIndex;
        continue;
      }
      // Closing brackets, each the one the innermost open bracket needs.
      CLOSING.lastIndex = this.at;
      if (!CLOSING.test(this.text)) throw new BadJson(); // the end, or a string left open
      const count = Math.min(CLOSING.lastIndex - this.at, open.length);
      const needed = count === 1 ? open.at(-1) : open.slice(-count).split('').reverse().join('');
      if (this.text.slice(this.at, this.at + count) !== needed) throw new BadJson();
      open = open.slice(0, -count);
      this.at += count;
      if (open === '') return deepest;
    }
  }
}

/** Throws WrongShape if an object in `source` (JSON already checked) gives
 * a key twice: JSON.parse keeps the last, so the keys are read here. */
function checkUniqueKeys(source) {
  const reader = new JsonReader(source);
  const open = []; // the keys of each object we are in (null for an array), innermost last
  let keyNext = false; // just after "{", or after "," in an object
  do {
    const [punct, string] = reader.next();
    if (string !== undefined && keyNext) {
      const key = JSON.parse(string);
      if (open.at(-1).has(key)) throw new WrongShape();
      open.at(-1).add(key);
    } else if (punct === '{') open.push(new Set());
    else if (punct === '[') open.push(null);
    else if (punct === '}' || punct === ']') open.pop();
    keyNext = punct === '{' || (punct === ',' && open.at(-1) instanceof Set);
  } while (open.length > 0);
}

/** How deep the arrays and objects in `source` nest (it is JSON), counting to `limit` at most. */
function nesting(source, limit) {
  let brackets = source.replace(STRINGS, '').replace(NOT_BRACKET, '');
  let levels = 0;
  for (; brackets !== '' && levels < limit; levels++) brackets = brackets.replace(INNERMOST, '');
  return levels;
}

// --- Writing numbers as serde_json does ---------------------------------------------

/** A float as serde_json writes it: the shortest digits that read back as
 * the same float, in plain digits for 1e-5 <= |x| < 1e16, else as 1.5e+300. */
function floatText(value) {
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const [mantissa, exponent] = Math.abs(value).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const e = Number(exponent);
  const sign = value < 0 ? '-' : '';
  if (e < -5 || e > 15) {
    const shown = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
    return `${sign}${shown}e${e < 0 ? '-' : '+'}${Math.abs(e)}`;
  }
  const point = e + 1; // digits.slice(0, point) is the whole part
  if (digits.length <= point) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
  if (point > 0) return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  return `${sign}0.${'0'.repeat(-point)}${digits}`;
}
