//! One HTTP request: authenticate, route, cap the body, hand it to the
//! policy, and answer; then count it and, for a signal request, write its
//! audit event. [`HttpError::response`] is the one place a failure of
//! the host becomes an HTTP response; the policy's own answers (including
//! its error bodies) pass through unchanged.
//!
//! Routes: `POST /api/v1/processes/{pid}/signal` and `GET /metrics` need a
//! token when tokens are set; `GET /healthz` never does, so probes need no
//! secret. What a browser could send is refused before anything else: a
//! request with an `Origin` that is not allowed (403), a signal request that
//! is not `Content-Type: application/json` (415: a cross-site form or
//! `text/plain` POST needs no CORS preflight, so this is what stops it).

use crate::audit;
use crate::auth::{HeldTokens, Tokens};
use crate::caller::{Caller, Peer};
use crate::connections::{self, Activity};
use crate::decision::{Decide, Decision, Described, MAX_LISTED};
use crate::guard::{GuardedTable, Waited};
use crate::host_calls::{Action, Headers};
use crate::logs;
use crate::metrics::{self, Metrics};
use crate::policy;
use crate::record::{self, RecordedAnswer, Unmade};
use crate::reload::{FailMode, ReloadAttempt, Reloaded};
use crate::shares::{Holder, Shares};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{Instrument, debug, debug_span, field};

/// The signal route: `/api/v1/processes/{pid}/signal`.
const SIGNAL_PREFIX: &str = "/api/v1/processes/";
const SIGNAL_SUFFIX: &str = "/signal";
/// The health route; it needs no token.
const HEALTH_PATH: &str = "/healthz";
/// The metrics route.
const METRICS_PATH: &str = "/metrics";

/// The default largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The response header that names a signal request's decision (as its
/// audit event and decision record do).
pub const DECISION_ID_HEADER: &str = "sigd-decision-id";
/// The `Retry-After` of a 503, in seconds.
const RETRY_AFTER: &str = "1";

/// The default time a body may take to arrive after its headers.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// What every request needs; shared by all connections.
pub struct App {
    /// What decides: in sigd, the active wasm policy (it swaps on reload).
    pub decider: Arc<dyn Decide>,
    /// The processes policies may look up and signal.
    pub processes: GuardedTable,
    /// `None`: no authentication (loopback only, enforced at start-up).
    pub tokens: Option<Arc<HeldTokens>>,
    /// Origins whose requests are served (exact `scheme://host[:port]`);
    /// a request with any other `Origin` header is refused.
    pub allowed_origins: Vec<String>,
    /// Largest body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long a client may take to send a body once its headers are in;
    /// a slower or unfinished one is answered 408 and its connection closed.
    pub body_timeout: Duration,
    pub metrics: Arc<Metrics>,
    /// The shadow policy, deciding each decided request again (`--shadow-policy`).
    pub shadow: Option<Arc<crate::shadow::Shadow>>,
    /// Each caller's share of the requests being answered at once: of
    /// `--max-connections`, since such a request's connection is never
    /// ended to make room (see [`crate::connections`]).
    pub answering: Arc<Shares>,
}

/// A response and what to record of it.
struct Reply {
    response: Response<Full<Bytes>>,
    /// The error code of the body ("" for a success).
    code: String,
    /// For a signal request that reached the policy: what was decided.
    decided: Option<Decided>,
}

/// A signal request a policy decided.
struct Decided {
    /// The `{pid}` segment.
    pid: String,
    decision: Decision,
    /// Its decision record, if something reads it (the audit log, a
    /// shadow), to be made on the log's thread (a shadow's copy in the
    /// request).
    record: Option<Unmade>,
}

/// Every way the host itself fails a request (the policy's refusals are not here).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("more than one Authorization header")]
    TwoAuthorizations,
    /// The value is the origin, as sent.
    #[error("origin {0:?} is not allowed")]
    OriginNotAllowed(String),
    #[error("the body is not declared as application/json")]
    NotJson,
    #[error("no such route")]
    NotFound,
    /// The route exists; the value lists the methods it takes.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("could not read the body: {0}")]
    BadBody(String),
    /// The body did not arrive in time (the value is the limit).
    #[error("the body took longer than {0:?}")]
    BodyTimeout(Duration),
    /// The policy gave no usable answer (the details are logged where it failed).
    #[error("the policy failed")]
    PolicyFailed,
    /// The host had no room (descriptors, memory) to do what was asked, or
    /// a group-scope target moved between groups while sigd looked; nothing
    /// was signalled, and the caller may try again.
    #[error("cannot serve the request now")]
    Busy,
}

impl HttpError {
    /// The one place a host failure becomes a status, a code and a sentence:
    /// the response, and the code it carries.
    pub fn response(&self) -> (Response<Full<Bytes>>, &'static str) {
        let (status, code, _) = self.parts();
        let mut response = json_response(status, self.body());
        let headers = response.headers_mut();
        match self {
            HttpError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sigd\""),
                );
            }
            HttpError::MethodNotAllowed(allowed) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
            }
            HttpError::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
            }
            // What is left of the body is never read: the connection ends.
            HttpError::BodyTimeout(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        (response, code)
    }

    /// Its status and code, without the rest of a response.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        let (status, code, _) = self.parts();
        (status, code)
    }

    /// Its body: `{"error": "<sentence>", "code": "<CODE>"}`.
    pub fn body(&self) -> String {
        let (_, code, message) = self.parts();
        serde_json::json!({ "error": message, "code": code }).to_string()
    }

    /// Its status, code and sentence.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            HttpError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "a valid bearer token is required".to_string(),
            ),
            HttpError::TwoAuthorizations => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "send one Authorization header, not several".to_string(),
            ),
            HttpError::OriginNotAllowed(_) => (
                StatusCode::FORBIDDEN,
                "ORIGIN_NOT_ALLOWED",
                "requests from web pages are refused: this origin is not allowed \
                 (sigd serve --allow-origin)"
                    .to_string(),
            ),
            HttpError::NotJson => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as JSON, with Content-Type: application/json".to_string(),
            ),
            HttpError::NotFound => (
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such endpoint: sigd serves POST /api/v1/processes/{pid}/signal".to_string(),
            ),
            HttpError::MethodNotAllowed(allowed) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("this endpoint accepts only {allowed}"),
            ),
            HttpError::PayloadTooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("the body must be at most {max} bytes"),
            ),
            HttpError::BodyTimeout(limit) => (
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                format!(
                    "the body must arrive within {} s of the headers",
                    limit.as_secs_f64()
                ),
            ),
            HttpError::BadBody(_) => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "the body could not be read".to_string(),
            ),
            HttpError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "BUSY",
                "sigd cannot serve this request now (no room, as many of this caller's \
                 requests being answered as it may have, or its target changed \
                 process group) and signalled nothing; try again"
                    .to_string(),
            ),
            // The details go to the log, never to the caller.
            HttpError::PolicyFailed => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "sigd failed to handle the request; see its log".to_string(),
            ),
        }
    }
}

/// Answer one request from `peer`, in its own tracing span; count it and
/// audit it.
pub async fn handle(
    app: &App,
    peer: &Peer,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // At `debug`: at `info` the one event per request is the audit event,
    // which says all the span would, and a span costs every request.
    let span = debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        status = field::Empty,
    );
    let started = Instant::now();
    let _in_flight = app.metrics.request();
    // Only signal requests are audited (whatever the method), so only they
    // need the trace id.
    let signal_route = signal_pid(request.uri().path()).is_some();
    let trace_id = signal_route
        .then(|| audit::trace_id(request.headers()))
        .flatten();
    let decision_id = signal_route.then(record::next_decision_id);
    async move {
        // The tokens in force as the request came (a SIGHUP may change them).
        let tokens = app.tokens.as_ref().map(|held| held.current());
        let mut principal = None;
        let id = decision_id.as_deref().unwrap_or_default();
        let reply = respond(app, tokens.as_deref(), peer, request, id, &mut principal).await;
        let reply = reply.unwrap_or_else(|error| {
            debug!(%error, "rejected");
            let (response, code) = error.response();
            Reply {
                response,
                code: code.to_string(),
                decided: None,
            }
        });
        let mut reply = reply;
        if let Some(id) = decision_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            reply.response.headers_mut().insert(DECISION_ID_HEADER, id);
        }
        let status = reply.response.status().as_u16();
        let took = started.elapsed();
        tracing::Span::current().record("status", status);
        // The one event per request at `info` is the audit event (signal
        // requests only): this access line is for `debug`.
        debug!(micros = took.as_micros() as u64, "answered");
        app.metrics.answered(status, &reply.code, took);
        let Reply {
            response,
            code,
            decided,
        } = reply;
        if let (Some(shadow), Some(decided)) = (&app.shadow, &decided)
            && let Some(record) = &decided.record
        {
            let id = decision_id.as_deref().unwrap_or_default();
            shadow.judge(|| record.record(id, &decided.pid, &decided.decision));
        }
        if signal_route {
            audit::log(
                decision_id.unwrap_or_default(),
                status,
                code,
                took,
                trace_id,
                principal,
                peer,
                decided.map(|d| (d.pid, d.decision, d.record)),
            );
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Answer one request from `peer`, a signal request under `decision_id`;
/// `principal` is set once its token is known.
async fn respond<'a>(
    app: &'a App,
    tokens: Option<&'a Tokens>,
    peer: &Peer,
    request: Request<Incoming>,
    decision_id: &str,
    principal: &mut Option<&'a str>,
) -> Result<Reply, HttpError> {
    let path = request.uri().path();
    if path == HEALTH_PATH {
        // Counts tell of activity: only for a caller the token admits.
        // What went wrong in a reload quotes the operator's files: only
        // for a caller sigd trusts (root, the operator's lone token).
        let admitted = authenticate(tokens, request.headers());
        let uid = peer.credentials.map(|credentials| credentials.uid);
        let shown = Shown {
            counts: admitted.is_ok(),
            errors: Holder::trusts(uid, admitted.ok().flatten()),
        };
        return health(app, request.method(), shown);
    }
    check_origin(request.headers(), &app.allowed_origins)?;
    *principal = authenticate(tokens, request.headers())?;
    if path == METRICS_PATH {
        return metrics(app, request.method());
    }
    let pid = route(request.method(), path)?.to_string();
    if !declares_json(request.headers()) {
        return Err(HttpError::NotJson);
    }
    let (parts, body) = request.into_parts();
    let connection = parts.extensions.get::<Arc<Activity>>().cloned();
    let body = tokio::time::timeout(app.body_timeout, read_body(body, app.max_body_bytes))
        .await
        .map_err(|_| HttpError::BodyTimeout(app.body_timeout))??;
    let caller = Caller {
        principal: principal.map(str::to_string),
        peer: peer.clone(),
    };
    // From here on the request is being answered: its connection keeps
    // its slot (see crate::connections). So a caller held to shares may
    // have only its share of them; past it, it is told to try again.
    let holder = Holder::of(&caller);
    let Ok(_answering) = app.answering.take(&holder) else {
        app.metrics.over_share();
        return Err(HttpError::Busy);
    };
    // Unless it was ended to make room (it never answers then).
    if let Some(connection) = connection
        && !connection.advance(connections::State::Answering)
    {
        return Err(HttpError::Busy);
    }
    // A record is kept only for what reads it: the audit log, a shadow.
    let recorded = audit::enabled() || app.shadow.is_some();
    let recorded_caller = recorded.then(|| caller.clone());
    let request = policy::Request {
        pid: pid.clone(),
        body: body.to_vec(),
        headers: Headers::new(parts.headers),
        caller,
    };
    // What the caller makes sigd log (its policy's output, a refused
    // escalation, a failure) is charged to its share of the log.
    let decision = logs::charged_to(holder, async {
        let decision = app.decider.decide(&app.processes, request).await;
        note_policy_call(app, decision_id, &decision);
        decision
    })
    .await;
    let (response, code, sent) = match answer(&decision) {
        Ok((status, body, code)) => {
            let sent = recorded.then(|| body.clone());
            (json_response(status, body), code, sent)
        }
        Err(error) => {
            let (response, code) = error.response();
            (response, code.to_string(), recorded.then(|| error.body()))
        }
    };
    let record = sent.zip(recorded_caller).map(|(sent, caller)| {
        let answer = RecordedAnswer {
            status: response.status().as_u16(),
            code: code.clone(),
            body: sent,
            policy_failed: match (&decision.answer, &decision.fell_back) {
                (Err(error), _) => Some(error.to_string()),
                (Ok(_), Some(fell)) => Some(format!(
                    "policy {} failed ({}); the built-in default policy answered",
                    fell.policy_sha256, fell.error
                )),
                (Ok(_), None) => None,
            },
        };
        Unmade::new(&body, caller, answer, crate::signal::realtime())
    });
    Ok(Reply {
        response,
        code,
        decided: Some(Decided {
            pid,
            decision,
            record,
        }),
    })
}

/// Count the policy call of `decision_id` that made `decision`, and log
/// and count how it failed, if it did.
fn note_policy_call(app: &App, decision_id: &str, decision: &Decision) {
    app.metrics.policy_call(decision.took);
    if decision.refused_an_escalation() {
        app.metrics.escalation_refused();
    }
    if let Err(error) = &decision.answer {
        app.metrics.policy_failed(error);
        tracing::error!(
            decision_id,
            details = %error,
            delivered = decision.delivered(),
            "policy failed"
        );
    }
    if let Some(fell) = &decision.fell_back {
        app.metrics.policy_failed(&fell.error);
        app.metrics.fell_back();
        tracing::error!(
            decision_id,
            details = %fell.error,
            policy_sha256 = &*fell.policy_sha256,
            "policy failed; the built-in default policy answered (--policy-fail-mode fallback)"
        );
    }
}

/// What `decision` answers the caller, as status, body and error code: the
/// policy's answer (noting a wait cut short), the host's 200 for a signal
/// delivered before the policy failed, or the host's own failure (a policy
/// that failed; no room, when nothing was delivered). `sigd policy replay`
/// asks this too, so a replayed decision is answered as a served one.
pub fn answer(decision: &Decision) -> Result<(StatusCode, String, String), HttpError> {
    match &decision.answer {
        // Nothing was sent, and the host could not do what was asked for
        // lack of room: that is sigd's to say (503), whatever the policy
        // made of it ("no such process", say). A delivered signal's answer
        // stands.
        _ if decision.try_again() && !decision.delivered() => Err(HttpError::Busy),
        Ok(answer) => {
            let body = decision
                .cut_short_wait()
                .and_then(|waited| note_cut_short_wait(&answer.body, &waited));
            let body = body.unwrap_or_else(|| answer.body.clone());
            Ok((answer.status, body, answer.code.clone()))
        }
        // The signal went out before the policy failed: that is the
        // answer, never a failure.
        Err(_) => match delivered_anyway(decision) {
            Some(body) => Ok((StatusCode::OK, body, String::new())),
            None => Err(HttpError::PolicyFailed),
        },
    }
}

/// `GET /metrics`: the counters, in the OpenMetrics text format.
fn metrics(app: &App, method: &Method) -> Result<Reply, HttpError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(HttpError::MethodNotAllowed("GET, HEAD"));
    }
    let mut response = Response::new(Full::new(Bytes::from(app.metrics.render())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    Ok(Reply {
        response,
        code: String::new(),
        decided: None,
    })
}

/// The raw `{pid}` segment if `path` is the signal route (whatever the method).
fn signal_pid(path: &str) -> Option<&str> {
    path.strip_prefix(SIGNAL_PREFIX)
        .and_then(|rest| rest.strip_suffix(SIGNAL_SUFFIX))
        .filter(|pid| !pid.contains('/'))
}

/// What `/healthz` tells the caller beyond readiness and the policies.
struct Shown {
    /// How the shadow's decisions went (no tokens, or the caller's is valid).
    counts: bool,
    /// Why a reload failed (root, or the operator's lone token).
    errors: bool,
}

/// `GET /healthz`: ready (a policy is loaded, or sigd would not listen),
/// which policy and how its last reload went (and the token file's, if
/// tokens come from one), and what `shown` allows.
fn health(app: &App, method: &Method, shown: Shown) -> Result<Reply, HttpError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(HttpError::MethodNotAllowed("GET, HEAD"));
    }
    let active = app.decider.describe();
    let mut body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "policy": described(&active),
        "last_reload": active.last_reload.as_ref().map(|reload| policy_reload(reload, shown.errors)),
    });
    if let Some(tokens) = app.tokens.as_ref().filter(|held| held.from_a_file()) {
        let last = tokens.last_reload().map(|reload| {
            let outcome = if reload.error.is_some() {
                "failed"
            } else {
                "read"
            };
            attempt(reload.at, outcome, reload.error.as_deref(), shown.errors)
        });
        body["token_file"] = serde_json::json!({ "last_reload": last });
    }
    body["policy"]["fail_mode"] = match active.fail_mode {
        FailMode::Closed => "closed",
        FailMode::Fallback => "fallback",
    }
    .into();
    if let Some(shadow) = &app.shadow {
        let (policy, decisions) = shadow.describe();
        let count = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        body["shadow"] = serde_json::json!({
            "policy": described(&policy),
            "last_reload": policy.last_reload.as_ref().map(|reload| policy_reload(reload, shown.errors)),
        });
        if shown.counts {
            body["shadow"]["decisions"] = serde_json::json!({
                "agree": count(&decisions.agree),
                "differ": count(&decisions.differ),
                "unanswered": count(&decisions.unanswered),
                "failed": count(&decisions.failed),
                "skipped": count(&decisions.skipped),
            });
        }
    }
    Ok(Reply {
        response: json_response(StatusCode::OK, body.to_string()),
        code: String::new(),
        decided: None,
    })
}

/// A policy, as `/healthz` describes it.
fn described(policy: &Described) -> serde_json::Value {
    serde_json::json!({
        "sha256": policy.sha256,
        "source": policy.source,
        "settings_sha256": policy.settings_sha256,
        "loaded_at": rfc3339(policy.loaded_at),
    })
}

/// A policy's reload attempt, as `/healthz` describes it.
fn policy_reload(reload: &ReloadAttempt, errors: bool) -> serde_json::Value {
    let (outcome, error) = match &reload.outcome {
        Ok(Reloaded::Swapped { .. }) => ("swapped", None),
        Ok(Reloaded::Unchanged) => ("unchanged", None),
        Err(sentence) => ("failed", Some(sentence.as_str())),
    };
    attempt(reload.at, outcome, error, errors)
}

/// What `/healthz` says of a failed reload to a caller not shown `errors`.
const ERROR_NOT_SHOWN: &str = "said to root and the operator's token alone (it may quote the operator's files); see sigd's log";

/// A reload attempt, as `/healthz` describes it: when, how it went, and
/// why it failed if it did (if `errors` may be shown).
fn attempt(
    at: std::time::SystemTime,
    outcome: &str,
    error: Option<&str>,
    errors: bool,
) -> serde_json::Value {
    let error = error.map(|sentence| if errors { sentence } else { ERROR_NOT_SHOWN });
    serde_json::json!({ "at": rfc3339(at), "outcome": outcome, "error": error })
}

/// `time` in UTC as RFC 3339, to the second: `2026-12-02T01:40:56Z`.
fn rfc3339(time: std::time::SystemTime) -> String {
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    format!("{}Z", crate::logs::utc_to_the_second(seconds))
}

/// The raw `{pid}` segment if `path` is the signal route and `method` is POST.
fn route<'p>(method: &Method, path: &'p str) -> Result<&'p str, HttpError> {
    let pid = signal_pid(path).ok_or(HttpError::NotFound)?;
    if method != Method::POST {
        return Err(HttpError::MethodNotAllowed("POST"));
    }
    Ok(pid)
}

/// Refuse a request from a web page (it carries `Origin`) unless its
/// origin is allowed: so neither a cross-site page nor a rebound DNS name
/// reaches sigd through a browser.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), HttpError> {
    for origin in headers.get_all(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !allowed.iter().any(|ok| *ok == origin) {
            return Err(HttpError::OriginNotAllowed(origin.into_owned()));
        }
    }
    Ok(())
}

/// The principal of the request's token (`None` when sigd has no tokens).
fn authenticate<'a>(
    tokens: Option<&'a Tokens>,
    headers: &HeaderMap,
) -> Result<Option<&'a str>, HttpError> {
    let mut presented = headers.get_all(header::AUTHORIZATION).iter();
    let (first, second) = (presented.next(), presented.next());
    if second.is_some() {
        return Err(HttpError::TwoAuthorizations);
    }
    let Some(tokens) = tokens else {
        return Ok(None);
    };
    match tokens.principal(first.map(HeaderValue::as_bytes)) {
        Some(principal) => Ok(Some(principal)),
        None => Err(HttpError::Unauthorized),
    }
}

/// Whether the request declares one JSON body: one `Content-Type` header,
/// `application/json` (any case, parameters such as `charset` allowed).
fn declares_json(headers: &HeaderMap) -> bool {
    let mut types = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(only), None) = (types.next(), types.next()) else {
        return false;
    };
    let media = only
        .as_bytes()
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default();
    media.trim_ascii().eq_ignore_ascii_case(b"application/json")
}

/// The whole body, refusing before reading when `Content-Length` is already
/// too large, and while reading when a chunked body grows past the cap.
async fn read_body(body: Incoming, max: usize) -> Result<Bytes, HttpError> {
    if body.size_hint().lower() > max as u64 {
        return Err(HttpError::PayloadTooLarge(max));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(HttpError::PayloadTooLarge(max))
        }
        Err(error) => Err(HttpError::BadBody(error.to_string())),
    }
}

/// The host's own answer for a signal a policy delivered before it failed
/// (trapped, ran out of time, answered garbage): 200 with what was
/// delivered, as the default policy would list it, and `incomplete`
/// saying that whatever else the request asked for was not done. `None` if
/// nothing was delivered.
fn delivered_anyway(decision: &Decision) -> Option<String> {
    let (pid, signal, scope, pids, unlisted) =
        decision.actions.iter().find_map(|action| match action {
            Action::Signalled {
                pid,
                signal,
                scope,
                outcome: Ok(pids),
                unlisted,
                ..
            } => Some((*pid, *signal, *scope, pids, *unlisted)),
            _ => None,
        })?;
    let mut answer = serde_json::json!({
        "success": true,
        "pid": pid,
        "signal": signal,
        "scope": scope.name(),
        "delivered_to": &pids[..pids.len().min(MAX_LISTED)],
    });
    if pids.len() + unlisted > MAX_LISTED {
        answer["delivered_count"] = (pids.len() + unlisted).into();
    }
    answer["incomplete"] = "the policy failed after the signal was delivered: anything else \
                            the request asked for (an escalation, a wait) was not done"
        .into();
    Some(answer.to_string())
}

/// `body` with its `exit` saying the wait was cut short (`"cut_short":
/// true`, and in `waited_ms` how long it lasted): the one thing the host
/// adds to a policy's answer, for only the host knows it (sigd was shutting
/// down, or as many requests were waiting as it lets). `None` for a body
/// without the `exit` of an unfinished wait: it stands as it is.
fn note_cut_short_wait(body: &str, waited: &Waited) -> Option<String> {
    let mut answer: serde_json::Value = serde_json::from_str(body).ok()?;
    let exit = answer.get_mut("exit")?.as_object_mut()?;
    if exit.get("exited") != Some(&serde_json::Value::Bool(false)) {
        return None;
    }
    exit.insert("cut_short".into(), true.into());
    exit.insert("waited_ms".into(), (waited.took.as_millis() as u64).into());
    serde_json::to_string(&answer).ok()
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the exact signal route matches; other methods on it are 405.
    #[test]
    fn routes() {
        let post = Method::POST;
        assert_eq!(route(&post, "/api/v1/processes/42/signal").unwrap(), "42");
        assert_eq!(route(&post, "/api/v1/processes/abc/signal").unwrap(), "abc");
        assert_eq!(route(&post, "/api/v1/processes//signal").unwrap(), "");
        for path in [
            "/",
            "/api/v1/processes/42",
            "/api/v1/processes/42/signal/",
            "/api/v1/processes/4/2/signal",
            "/api/v2/processes/42/signal",
            "/api/v1/processes/signal",
        ] {
            assert!(
                matches!(route(&post, path), Err(HttpError::NotFound)),
                "{path}"
            );
        }
        assert!(matches!(
            route(&Method::GET, "/api/v1/processes/42/signal"),
            Err(HttpError::MethodNotAllowed("POST"))
        ));
    }

    /// Times are written in UTC, leap years and the epoch included.
    #[test]
    fn rfc3339_dates() {
        let at = |seconds| rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_796_175_656), "2026-12-02T01:40:56Z");
    }
}
