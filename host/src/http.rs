//! One HTTP request: authenticate, route, cap the body, hand it to the
//! policy, and answer; then count it and, for a signal request, write its
//! audit event. [`HttpError::into_response`] is the one place a failure of
//! the host becomes an HTTP response; the policy's own answers (including
//! its error bodies) pass through unchanged.
//!
//! Routes: `POST /api/v1/processes/{pid}/signal` and `GET /metrics` need the
//! token when one is set; `GET /healthz` never does, so probes need no secret.

use crate::audit;
use crate::auth::Token;
use crate::guard::Guarded;
use crate::metrics::{self, Metrics};
use crate::policy::{self, CallError};
use crate::reload::ActivePolicy;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tracing::{Instrument, field, info, info_span, warn};

/// The signal route: `/api/v1/processes/{pid}/signal`.
const SIGNAL_PREFIX: &str = "/api/v1/processes/";
const SIGNAL_SUFFIX: &str = "/signal";
/// The health route; it needs no token.
const HEALTH_PATH: &str = "/healthz";
/// The metrics route.
const METRICS_PATH: &str = "/metrics";

/// What decides signal requests.
#[derive(Clone)]
pub enum Decider {
    /// The wasm policy, swappable: the product.
    Policy(Arc<ActivePolicy>),
    /// The default policy's logic linked natively: the benchmarks' baseline.
    Native,
}

impl Decider {
    /// Decide one request; also which policy decided, for the audit log.
    async fn call(
        &self,
        processes: &Guarded,
        request: policy::Request,
    ) -> (policy::Called, audit::Sha256) {
        match self {
            Decider::Policy(active) => {
                let policy = active.current();
                let called = policy.call(processes, request).await;
                (called, audit::Sha256::Of(policy))
            }
            Decider::Native => (
                crate::native::call(processes, &request),
                audit::Sha256::Native,
            ),
        }
    }

    /// The sha256 of the policy deciding now ("native" for the baseline).
    fn sha256(&self) -> String {
        match self {
            Decider::Policy(active) => active.current().sha256().to_string(),
            Decider::Native => "native".into(),
        }
    }

    /// Where the policy comes from.
    fn source(&self) -> String {
        match self {
            Decider::Policy(active) => active.source().to_string(),
            Decider::Native => "the default policy linked natively (baseline)".into(),
        }
    }
}

/// The default largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every request needs; shared by all connections.
pub struct App {
    /// What decides; a wasm policy swaps on reload.
    pub policy: Decider,
    /// The processes policies may look up and signal.
    pub processes: Guarded,
    /// `None`: no authentication (loopback only, enforced at start-up).
    pub token: Option<Token>,
    /// Largest body accepted, in bytes.
    pub max_body_bytes: usize,
    pub metrics: Arc<Metrics>,
}

/// An answer and what to record of it.
struct Answer {
    response: Response<Full<Bytes>>,
    /// The error code of the body ("" for a success).
    code: String,
    /// What the policy did, for a signal request that reached it.
    called: Option<audit::Called>,
}

/// Every way the host itself fails a request (the policy's refusals are not here).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("no such route")]
    NotFound,
    /// The route exists; the value lists the methods it takes.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("could not read the body: {0}")]
    BadBody(String),
    #[error(transparent)]
    Policy(#[from] CallError),
}

impl HttpError {
    /// The error code its answer carries.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    /// The one place a host failure becomes a status, a code and a sentence.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let (status, code, message) = self.parts();
        let body = serde_json::json!({ "error": message, "code": code }).to_string();
        let mut response = json_response(status, body);
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
            _ => {}
        }
        response
    }

    /// Its status, code and sentence.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            HttpError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "a valid bearer token is required".to_string(),
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
            HttpError::BadBody(_) => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "the body could not be read".to_string(),
            ),
            // The details go to the log, never to the caller.
            HttpError::Policy(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "sigd failed to handle the request; see its log".to_string(),
            ),
        }
    }
}

/// Answer one request, in its own tracing span; count it and audit it.
pub async fn handle(
    app: &App,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let span = info_span!(
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
    async move {
        let answer = respond(app, request).await.unwrap_or_else(|error| {
            warn!(%error, "rejected");
            let code = error.code().to_string();
            Answer {
                response: error.into_response(),
                code,
                called: None,
            }
        });
        let status = answer.response.status().as_u16();
        let took = started.elapsed();
        tracing::Span::current().record("status", status);
        info!(micros = took.as_micros() as u64, "answered");
        app.metrics.answered(status, &answer.code, took);
        if signal_route {
            audit::log(status, &answer.code, took, trace_id, answer.called.as_ref());
        }
        Ok(answer.response)
    }
    .instrument(span)
    .await
}

async fn respond(app: &App, request: Request<Incoming>) -> Result<Answer, HttpError> {
    let path = request.uri().path();
    if path == HEALTH_PATH {
        return health(app, request.method());
    }
    if let Some(token) = &app.token {
        let presented = request.headers().get(header::AUTHORIZATION);
        if !token.accepts(presented.map(HeaderValue::as_bytes)) {
            return Err(HttpError::Unauthorized);
        }
    }
    if path == METRICS_PATH {
        return metrics(app, request.method());
    }
    let pid = route(request.method(), path)?.to_string();
    let headers = policy_headers(request.headers());
    let body = read_body(request.into_body(), app.max_body_bytes).await?;
    let request = policy::Request {
        pid: pid.clone(),
        body: body.into(),
        headers,
    };
    let (
        policy::Called {
            answer,
            actions,
            took,
        },
        policy_sha256,
    ) = app.policy.call(&app.processes, request).await;
    app.metrics.policy_call(took);
    let called = Some(audit::Called {
        pid,
        actions,
        policy_sha256,
    });
    match answer {
        Ok(answer) => Ok(Answer {
            response: json_response(
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                answer.body.clone(),
            ),
            code: error_code(&answer.body),
            called,
        }),
        Err(error) => {
            app.metrics.policy_failed(&error);
            tracing::error!(details = %error, "policy failed");
            let error = HttpError::Policy(error);
            Ok(Answer {
                code: error.code().to_string(),
                response: error.into_response(),
                called,
            })
        }
    }
}

/// `GET /metrics`: the counters, in the OpenMetrics text format.
fn metrics(app: &App, method: &Method) -> Result<Answer, HttpError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(HttpError::MethodNotAllowed("GET, HEAD"));
    }
    let mut response = Response::new(Full::new(Bytes::from(app.metrics.render())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    Ok(Answer {
        response,
        code: String::new(),
        called: None,
    })
}

/// The `code` of a JSON error body, or "".
fn error_code(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Coded {
        code: Option<String>,
    }
    serde_json::from_str::<Coded>(body)
        .ok()
        .and_then(|coded| coded.code)
        .unwrap_or_default()
}

/// The raw `{pid}` segment if `path` is the signal route (whatever the method).
fn signal_pid(path: &str) -> Option<&str> {
    path.strip_prefix(SIGNAL_PREFIX)
        .and_then(|rest| rest.strip_suffix(SIGNAL_SUFFIX))
        .filter(|pid| !pid.contains('/'))
}

/// `GET /healthz`: ready (a policy is loaded, or sigd would not listen), and which.
fn health(app: &App, method: &Method) -> Result<Answer, HttpError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(HttpError::MethodNotAllowed("GET, HEAD"));
    }
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "policy": {
            "sha256": app.policy.sha256(),
            "source": app.policy.source(),
        },
    });
    Ok(Answer {
        response: json_response(StatusCode::OK, body.to_string()),
        code: String::new(),
        called: None,
    })
}

/// The raw `{pid}` segment if `path` is the signal route and `method` is POST.
fn route<'p>(method: &Method, path: &'p str) -> Result<&'p str, HttpError> {
    let pid = signal_pid(path).ok_or(HttpError::NotFound)?;
    if method != Method::POST {
        return Err(HttpError::MethodNotAllowed("POST"));
    }
    Ok(pid)
}

/// Headers the policy may see: never `authorization`, only UTF-8 values.
pub fn policy_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| *name != header::AUTHORIZATION)
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect()
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
}
