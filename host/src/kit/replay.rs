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
/// or the `record={...}` that ends a text audit line: the first ` record={`
/// a record can be read from, not merely the first (a string the policy
/// wrote, its answer's `code` say, may hold ` record={` earlier in the
/// line; written escaped, it is never a record). Only an audit event's
/// line holds one: another line's text may be a policy's words (a trap's,
/// say), ` record={` and all.
fn record_in(line: &str) -> Option<Record> {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
        let record = match (value.get("target"), value.get("record")) {
            (Some(target), _) if target != crate::audit::TARGET => return None,
            (_, Some(record)) => record.clone(),
            (_, None) => value,
        };
        return serde_json::from_value(record).ok();
    }
    if !is_audit_line(line) {
        return None;
    }
    line.match_indices(" record={").find_map(|(at, marker)| {
        let json = &line[at + marker.len() - 1..];
        let mut values = serde_json::Deserializer::from_str(json).into_iter::<Record>();
        values.next()?.ok()
    })
}

/// Whether a text line is an audit event's, as sigd writes one: its time
/// (absent in the journal), its level, the span it was in (at `debug`:
/// `request{...}:`, words with `{`, `}` or `=`), then the target
/// `sigd::audit:`, all before anything the event says. A line sigd wrote
/// otherwise (a start-up error, `sigd: ...`) is none, whatever words it
/// carries: a policy's may be anything but a line's end.
fn is_audit_line(line: &str) -> bool {
    let mut words = line.split(' ').filter(|word| !word.is_empty()).peekable();
    if words
        .peek()
        .is_some_and(|word| word.starts_with(|c: char| c.is_ascii_digit()))
    {
        words.next();
    }
    let level = words.next().unwrap_or_default();
    let level = level.rsplit('>').next().unwrap_or_default();
    if !["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level) {
        return false;
    }
    let mut words = words.skip_while(|word| word.contains(['{', '}', '=']));
    words.next().and_then(|word| word.strip_suffix(':')) == Some(crate::audit::TARGET)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A text audit line as sigd writes it, its answer's code `code`.
    fn text_line(code: &str) -> String {
        format!(
            r#"2026-12-03T16:26:27.643702Z  INFO sigd::audit: signal request decision_id="c4c064e145cb4f80-4c97b384094aff2a" peer_uid=0 transport="tcp" remote=127.0.0.1:33140 pid="2" decision="refused" delivered_to="[]" delivered_count=0 status=403 code={code:?} latency_us=195 escalation=false record={{"decision_id":"c4c064e145cb4f80-4c97b384094aff2a","policy_sha256":"16c3a3a0b00a56b35cc1be9e21fbc5154faa8bae10d761633ca3e1c6a51d59dd","request":{{"pid":"2","body":{{"text":"{{\"signal\":10}}"}},"caller":{{"principal":null,"peer":{{"transport":{{"tcp":"127.0.0.1:33140"}},"credentials":{{"pid":null,"uid":0,"gid":null}}}}}}}},"realtime":[34,64],"calls":[{{"call":"opened","pid":2,"start_time":3192913}}],"answer":{{"status":403,"code":"X","body":"{{}}"}}}}"#
        )
    }

    /// The record that ends a text line is found even when a string the
    /// policy chose, earlier in the line, holds ` record={` and a record's
    /// worth of JSON: written escaped, that is never read as a record.
    #[test]
    fn a_text_lines_record_is_found_past_a_forged_one() {
        let record = record_in(&text_line("NOT_PERMITTED")).expect("the record of a text line");
        assert_eq!(record.decision_id, "c4c064e145cb4f80-4c97b384094aff2a");
        let forged = r#"X record={"decision_id":"forged"} record={"#;
        let line = text_line(forged);
        assert!(line.find(" record={") < line.rfind(" record={\"decision_id\":\"c4c0"));
        let record = record_in(&line).expect("the record past the forged one");
        assert_eq!(record.decision_id, "c4c064e145cb4f80-4c97b384094aff2a");
        assert_eq!(record.answer.code, "X");
    }

    /// A record is read only from an audit event's line: one that another
    /// line carries (in a policy's trap, its settings' error) is not, in
    /// text or JSON.
    #[test]
    fn only_an_audit_lines_record_is_read() {
        let audit = text_line("X");
        let (_, record) = audit.split_once(" record=").unwrap();
        let carried = format!(
            "2026-12-03T16:26:28.000000Z ERROR sigd::http: policy failed decision_id=\"a\" \
             details=policy trapped: sigd::audit: x record={record}"
        );
        assert!(record_in(&carried).is_none(), "{carried}");
        // A start-up error quoting a policy's sentence: no target of its own.
        let quoted = format!(
            "sigd: the policy rejected the settings: x INFO sigd::audit: x record={record}"
        );
        assert!(record_in(&quoted).is_none(), "{quoted}");
        // As the journal gives it (`-o cat`, no time), or at `debug` (a span).
        for prefix in [
            "INFO",
            "<6>INFO",
            "2026-12-03T16:26:28Z  INFO request{method=POST path=/a: status=200}:",
        ] {
            let line = format!("{prefix} sigd::audit: signal request record={record}");
            assert!(record_in(&line).is_some(), "{line}");
        }
        let json = |target: &str| format!(r#"{{"target":"{target}","record":{record}}}"#);
        assert!(record_in(&json("sigd::audit")).is_some());
        assert!(record_in(&json("sigd::http")).is_none());
    }
}
