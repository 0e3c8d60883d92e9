//! `sigd policy eval PATH --pid 42 --body '{"signal": 15}'`: one request
//! through a policy against a simulated process table, printing every host
//! call the policy made and the HTTP answer sigd would send. No real signal
//! is ever sent.

use super::simulated::Simulated;
use super::{describe_action, describe_caller, describe_compiled, millis, suite};
use crate::host_calls::Headers;
use crate::http::HttpError;
use crate::options::RuntimeOptions;
use crate::policy::{Policy, Request};
use anyhow::Context;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::BodyExt;
use std::path::PathBuf;

/// `sigd policy eval`: one request against a simulated process table.
#[derive(Debug, clap::Args)]
pub struct Eval {
    /// The policy component (.wasm).
    path: PathBuf,

    /// The `{pid}` path segment, as a caller would send it (any text).
    #[arg(long)]
    pid: String,

    /// The request body.
    #[arg(long, default_value = r#"{"signal": 15}"#)]
    body: String,

    /// A request header, `NAME: VALUE`; repeat for more. `authorization` is
    /// never passed to a policy, here as in `sigd serve`.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,

    /// The simulated process table, a JSON list such as
    /// `[{"pid": 42, "ppid": 1, "pgid": 42, "uid": 1000, "state": "sleeping",
    /// "command": "server", "ignores": [15], "permission_denied": false}]`
    /// (every field but `pid` optional). sigd itself is pid 4242 in it.
    /// Without this flag: the conformance suite's table (init 1; sigd 4242
    /// under 70, in group 60 with 61; 42 sleeping; 43 a zombie; 44 survives
    /// SIGTERM; 77 not sigd's to signal; 50 -> 51 -> 52, 52 in its own group).
    #[arg(long, value_name = "FILE")]
    processes: Option<PathBuf>,

    /// Settings (a JSON file) to configure the policy with, as `sigd serve
    /// --policy-settings` would.
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,

    #[command(flatten)]
    caller: super::CallerArgs,

    /// Run the request this many times (each on a fresh copy of the table)
    /// and report the policy call's latency: the first call (a fresh
    /// instance) and the median and p99 of the rest (reused instances, or
    /// fresh ones with --fresh-instances).
    #[arg(long, default_value_t = 1, value_name = "N")]
    repeat: u32,

    #[command(flatten)]
    runtime: RuntimeOptions,
}

impl Eval {
    /// Run the request and print what happened; `Ok(false)` if the policy
    /// failed (sigd would answer 500).
    pub async fn run(self) -> anyhow::Result<bool> {
        let (table_text, from) = match &self.processes {
            None => (
                suite::TABLE.to_string(),
                "the conformance suite's table".into(),
            ),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                (text, path.display().to_string())
            }
        };
        let table = Simulated::from_json(&table_text)
            .with_context(|| format!("{from} is not a process table"))?;
        let headers = self.headers()?;
        let loaded = super::load(&self.path, self.settings.as_deref(), &self.runtime)?;
        println!(
            "policy    {} (sha256 {}, {})",
            self.path.display(),
            &loaded.policy.sha256()[..12],
            describe_compiled(loaded.policy.compiled(), loaded.took)
        );
        println!(
            "processes {from}; sigd is pid {}",
            super::SIMULATED_SIGD_PID
        );
        println!(
            "request   POST /api/v1/processes/{}/signal {}",
            self.pid, self.body
        );
        println!("caller    {}", describe_caller(&self.caller.caller()));
        let decision = loaded
            .policy
            .call(&super::guarded(&table), self.request(&headers))
            .await;
        println!("host calls");
        if decision.actions.is_empty() {
            println!("          none");
        }
        for (i, action) in decision.actions.iter().enumerate() {
            println!("  {:>2}. {}", i + 1, describe_action(action));
        }
        let sound = decision.answer.is_ok();
        let (status, body) = match decision.answer {
            Ok(answer) => (answer.status.as_u16(), answer.body),
            Err(error) => {
                println!("failure   {error}");
                let (response, _) = HttpError::PolicyFailed.response();
                let status = response.status().as_u16();
                let body = response.into_body().collect().await?.to_bytes();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        println!("response  {status} {reason}");
        println!("          {body}");
        println!("took      {} (the policy call)", millis(decision.took));
        if self.repeat > 1 {
            self.latency(&loaded.policy, &table_text, &headers).await?;
        }
        let sent = table.sent();
        if sent.is_empty() {
            println!("simulated no signal sent");
        }
        for sent in sent {
            let to = if sent.group { "group " } else { "" };
            println!("simulated signal {} sent to {to}{}", sent.signal, sent.pid);
        }
        Ok(sound)
    }

    /// Repeat the request and print the policy call's latency.
    async fn latency(
        &self,
        policy: &Policy,
        table: &str,
        headers: &HeaderMap,
    ) -> anyhow::Result<()> {
        let mut took = Vec::new();
        for _ in 1..self.repeat {
            let table = super::guarded(&Simulated::from_json(table)?);
            took.push(policy.call(&table, self.request(headers)).await.took);
        }
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
        let instances = match self.runtime.fresh_instances {
            true => "a fresh instance each",
            false => "reused instances",
        };
        println!(
            "latency   median {}, p99 {} over {} more calls ({instances})",
            millis(at(0.5)),
            millis(at(0.99)),
            took.len()
        );
        Ok(())
    }

    /// The request, as sigd would hand it to the policy.
    fn request(&self, headers: &HeaderMap) -> Request {
        Request {
            pid: self.pid.clone(),
            body: self.body.clone().into_bytes(),
            headers: Headers::new(headers.clone()),
            caller: self.caller.caller(),
        }
    }

    /// The `--header` flags as the headers of a request.
    fn headers(&self) -> anyhow::Result<HeaderMap> {
        let mut headers = HeaderMap::new();
        for header in &self.headers {
            let (name, value) = header
                .split_once(':')
                .with_context(|| format!("--header {header:?}: expected NAME: VALUE"))?;
            let name = HeaderName::try_from(name.trim())
                .with_context(|| format!("--header {header:?}: not a header name"))?;
            let value = HeaderValue::try_from(value.trim())
                .with_context(|| format!("--header {header:?}: not a header value"))?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}
