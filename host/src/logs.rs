//! sigd's logs, on stderr: lines for people or JSON objects (one per
//! line), filtered by `RUST_LOG`. When stderr is the journal (systemd says
//! so in `$JOURNAL_STREAM`: the device and inode of the stream it gave),
//! every line starts with its syslog priority (`<3>` error, `<4>` warning,
//! `<6>` info, `<7>` debug and trace), which journald takes off and keeps
//! as the entry's priority; lines for people then carry no timestamp of
//! their own, the journal keeps one.
//!
//! JSON objects are written by [`JsonLines`]: tracing's own JSON format,
//! except that an audit event's decision `record` (JSON already) is
//! embedded as an object, not as a string holding one.

use crate::cli::LogFormat;
use std::fmt::Write as _;
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The field of an event whose value is a JSON document already: an audit
/// event's decision record.
pub const RAW_JSON_FIELD: &str = "record";

/// Log in `format`, what `RUST_LOG` lets through (else `default_filter`).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match (format, stderr_is_journal()) {
        (LogFormat::Text, false) => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        (LogFormat::Json, false) => logs
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .init(),
        (LogFormat::Text, true) => {
            let lines = format::format().without_time().with_ansi(false);
            logs.event_format(Prioritized(lines)).init()
        }
        (LogFormat::Json, true) => logs
            .fmt_fields(JsonFields::new())
            .event_format(Prioritized(JsonLines))
            .init(),
    }
}

/// Whether stderr is the stream `$JOURNAL_STREAM` names (`DEVICE:INODE`):
/// set by systemd for a service whose output goes to the journal, and
/// inherited by whatever it starts, whose stderr may be elsewhere.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Ok(stderr) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    stream == format!("{}:{}", stderr.st_dev, stderr.st_ino)
}

/// A log line's format, with the line's syslog priority before it.
struct Prioritized<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prioritized<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(context, writer, event)
    }
}

/// One JSON object per event: `timestamp`, `level`, the event's fields
/// (`message` among them), `target`, and `span` (the current span's name
/// and fields, which `JsonFields` formatted as a JSON object).
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::with_capacity(512);
        line.push_str("{\"timestamp\":\"");
        SystemTime.format_time(&mut Writer::new(&mut line))?;
        let metadata = event.metadata();
        write!(line, "\",\"level\":\"{}\"", metadata.level())?;
        let raw_json = metadata.target() == crate::audit::TARGET;
        event.record(&mut JsonFieldsOf(&mut line, raw_json));
        line.push_str(",\"target\":");
        push_json_string(&mut line, metadata.target());
        if let Some(span) = context.lookup_current() {
            line.push_str(",\"span\":{\"name\":");
            push_json_string(&mut line, span.name());
            let extensions = span.extensions();
            let fields = extensions
                .get::<FormattedFields<N>>()
                .map(|fields| fields.fields.as_str())
                .unwrap_or_default();
            // `{"a":1}` -> `,"a":1`: the span's own fields after its name.
            if let Some(inner) = fields.strip_prefix('{').and_then(|f| f.strip_suffix('}'))
                && !inner.is_empty()
            {
                line.push(',');
                line.push_str(inner);
            }
            line.push('}');
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// An event's fields as `,"name":value` members of a JSON object; with
/// `true`, an audit event's: its record is JSON already.
struct JsonFieldsOf<'a>(&'a mut String, bool);

impl JsonFieldsOf<'_> {
    fn name(&mut self, field: &Field) {
        self.0.push(',');
        push_json_string(self.0, field.name());
        self.0.push(':');
    }
}

impl Visit for JsonFieldsOf<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.name(field);
        let text = format!("{value:?}");
        // The decision record is given as JSON already (`display`).
        if self.1 && field.name() == RAW_JSON_FIELD && text.starts_with('{') {
            self.0.push_str(&text);
        } else {
            push_json_string(self.0, &text);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        push_json_string(self.0, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.name(field);
        match serde_json::Number::from_f64(value) {
            Some(number) => self.0.push_str(&number.to_string()),
            None => push_json_string(self.0, &value.to_string()),
        }
    }
}

/// `text` as a JSON string.
fn push_json_string(line: &mut String, text: &str) {
    // Serializing a string into a String cannot fail.
    line.push_str(&serde_json::to_string(text).unwrap_or_default());
}
