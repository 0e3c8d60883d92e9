//! `sigd policy replay RECORDS --policy NEW.wasm`: decide every recorded
//! request again with a candidate policy, over a host that answers from the
//! record (never the live system; see [`crate::replay`]), and say how many
//! decisions agree and, for each that does not, what changed. Exit 1 when
//! any differs or cannot be answered from its record: a CI gate.
//!
//! RECORDS is sigd's log (or any file) with one audit event, or one bare
//! record, per line: JSON lines from `--log-format json`, or text lines,
//! whose `record={...}` ends the line. Other lines are skipped.

use crate::http;
use crate::options::RuntimeOptions;
use crate::policy::Policy;
use crate::record::Record;
use crate::replay::{self, Recorded, Verdict};
use anyhow::Context;
use serde::Serialize;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// `sigd policy replay`: recorded decisions, decided again by a candidate.
#[derive(Debug, clap::Args)]
pub struct Replay {
    /// The records: sigd's log, or lines of records (`-` for stdin).
    records: PathBuf,

    /// The candidate policy component (.wasm).
    #[arg(long, value_name = "PATH")]
    policy: PathBuf,

    /// Settings (a JSON file) to configure the candidate with, as `sigd
    /// serve --policy-settings` would.
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,

    /// Print one JSON object (the counts, and every decision that does not
    /// agree) instead of lines for people.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    runtime: RuntimeOptions,
}

/// How one replayed decision compares with its record.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Compared {
    Agrees,
    /// `changed` names the fields of the verdict that differ.
    Differs {
        changed: Vec<&'static str>,
        recorded: Verdict,
        replayed: Verdict,
    },
    /// The candidate asked the host what the record cannot answer.
    Unanswered { asked: Vec<String> },
}

/// One record's comparison.
#[derive(Debug, Serialize)]
struct Replayed {
    decision_id: String,
    #[serde(flatten)]
    compared: Compared,
}

/// The whole replay, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Report {
    policy_sha256: String,
    settings_sha256: Option<String>,
    records: usize,
    agree: usize,
    differ: usize,
    unanswered: usize,
    /// Lines that held no record.
    skipped_lines: usize,
    /// Every decision that does not agree, in the records' order.
    decisions: Vec<Replayed>,
}

impl Replay {
    /// Replay every record; `Ok(false)` if any does not agree.
    pub async fn run(self) -> anyhow::Result<bool> {
        let (records, skipped_lines) = read_records(&self.records)?;
        if records.is_empty() {
            anyhow::bail!(
                "{} holds no decision records (sigd writes them in its audit events)",
                self.records.display()
            );
        }
        let loaded = super::load(&self.policy, self.settings.as_deref(), &self.runtime)?;
        let mut report = Report {
            policy_sha256: loaded.policy.sha256().to_string(),
            settings_sha256: loaded.policy.settings_sha256().map(str::to_string),
            records: records.len(),
            agree: 0,
            differ: 0,
            unanswered: 0,
            skipped_lines,
            decisions: Vec::new(),
        };
        for record in &records {
            let compared = compare(&loaded.policy, record).await;
            match compared {
                Compared::Agrees => report.agree += 1,
                Compared::Differs { .. } => report.differ += 1,
                Compared::Unanswered { .. } => report.unanswered += 1,
            }
            if !matches!(compared, Compared::Agrees) {
                report.decisions.push(Replayed {
                    decision_id: record.decision_id.clone(),
                    compared,
                });
            }
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_report(&self.policy, &report);
        }
        Ok(report.differ == 0 && report.unanswered == 0)
    }
}

/// Decide `record`'s request again with `policy`, and compare.
pub async fn compare(policy: &Policy, record: &Record) -> Compared {
    let decision = policy
        .replay(Recorded::new(record), replay::request(record))
        .await;
    let asked = replay::unanswered(&decision.actions);
    if !asked.is_empty() {
        let mut asked: Vec<String> = asked.into_iter().map(str::to_string).collect();
        if record.calls_left_out > 0 {
            asked.push(format!(
                "(the record left out {} host calls past its first {})",
                record.calls_left_out,
                crate::record::MAX_CALLS
            ));
        }
        return Compared::Unanswered { asked };
    }
    let (status, code) = match http::answer(&decision) {
        Ok((status, _, code)) => (status.as_u16(), code),
        Err(error) => {
            let (response, code) = error.response();
            (response.status().as_u16(), code.to_string())
        }
    };
    let replayed = Verdict::of(status, &code, &decision.actions);
    let answer = &record.answer;
    let recorded = Verdict::of(answer.status, &answer.code, &record.calls);
    let changed = recorded.differences(&replayed);
    match changed.is_empty() {
        true => Compared::Agrees,
        false => Compared::Differs {
            changed,
            recorded,
            replayed,
        },
    }
}

/// The records in `path` (`-`: stdin), and how many lines held none.
pub fn read_records(path: &Path) -> anyhow::Result<(Vec<Record>, usize)> {
    let reader: Box<dyn BufRead> = match path.to_str() {
        Some("-") => Box::new(std::io::stdin().lock()),
        _ => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
        )),
    };
    let (mut records, mut skipped) = (Vec::new(), 0);
    for line in reader.lines() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        match record_in(&line) {
            Some(record) => records.push(record),
            None if line.trim().is_empty() => {}
            None => skipped += 1,
        }
    }
    Ok((records, skipped))
}

/// The record in one line: a JSON audit event's `record`, a bare record,
/// or the `record={...}` that ends a text audit line.
fn record_in(line: &str) -> Option<Record> {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
        let record = match value.get("record") {
            Some(record) => record.clone(),
            None => value,
        };
        return serde_json::from_value(record).ok();
    }
    let at = line.find(" record={")? + " record=".len();
    let mut values = serde_json::Deserializer::from_str(&line[at..]).into_iter::<Record>();
    values.next()?.ok()
}

/// The report, for people.
fn print_report(policy: &Path, report: &Report) {
    println!(
        "replayed {} decisions with {} (sha256 {}):",
        report.records,
        policy.display(),
        &report.policy_sha256[..12]
    );
    println!(
        "  {} agree, {} differ, {} cannot be answered from their record",
        report.agree, report.differ, report.unanswered
    );
    if report.skipped_lines > 0 {
        println!("  ({} lines held no record)", report.skipped_lines);
    }
    for replayed in &report.decisions {
        match &replayed.compared {
            Compared::Agrees => {}
            Compared::Differs {
                changed,
                recorded,
                replayed: now,
            } => {
                let changes: Vec<String> = changed
                    .iter()
                    .map(|field| format!("{field} {} -> {}", part(recorded, field), part(now, field)))
                    .collect();
                println!("differs    {}: {}", replayed.decision_id, changes.join(", "));
            }
            Compared::Unanswered { asked } => println!(
                "unanswered {}: the record cannot answer {}",
                replayed.decision_id,
                asked.join(", ")
            ),
        }
    }
}

/// One field of a verdict, for people.
fn part(verdict: &Verdict, field: &str) -> String {
    let none = || "none".to_string();
    match field {
        "status" => verdict.status.to_string(),
        "code" if verdict.code.is_empty() => "none".into(),
        "code" => verdict.code.clone(),
        "signal" => verdict.signal.map_or_else(none, |s| s.to_string()),
        "scope" => verdict.scope.map_or_else(none, |s| s.name().to_string()),
        "targets" => verdict.targets.as_ref().map_or_else(none, |t| format!("{t:?}")),
        _ => String::new(),
    }
}
