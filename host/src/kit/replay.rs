//! `sigd policy replay RECORDS --policy NEW.wasm`: decide every recorded
//! request again with a candidate policy, over a host that answers from the
//! record (never the live system; see [`crate::replay`]), and say how many
//! decisions agree and, for each that does not, what changed. Exit 1 when
//! any differs or cannot be answered from its record: a CI gate.
//!
//! RECORDS is sigd's log (or any file) with one audit event, or one bare
//! record, per line: JSON lines from `--log-format json`, or text lines,
//! whose `record={...}` ends the line. Other lines are skipped.

use crate::options::RuntimeOptions;
use crate::record::Record;
use crate::replay::{Compared, compare};
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
    /// Decisions the candidate failed (trapped, hit a limit, answered badly).
    failed: usize,
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
            failed: 0,
            skipped_lines,
            decisions: Vec::new(),
        };
        for record in &records {
            let compared = compare(&loaded.policy, record).await;
            match compared {
                Compared::Agrees => report.agree += 1,
                Compared::Differs { .. } => report.differ += 1,
                Compared::Unanswered { .. } => report.unanswered += 1,
                Compared::Failed { .. } => report.failed += 1,
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
        Ok(report.agree == report.records)
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
        "  {} agree, {} differ, {} cannot be answered from their record, {} failed",
        report.agree, report.differ, report.unanswered, report.failed
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
                let changes = recorded.describe_changes(now, changed);
                println!("differs    {}: {changes}", replayed.decision_id);
            }
            Compared::Unanswered { asked } => println!(
                "unanswered {}: the record cannot answer {}",
                replayed.decision_id,
                asked.join(", ")
            ),
            Compared::Failed { error } => {
                println!("failed     {}: {error}", replayed.decision_id)
            }
        }
    }
}
