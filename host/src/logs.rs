//! sigd's logs, on stderr: lines for people or JSON objects (one per
//! line), filtered by `RUST_LOG`. When stderr is the journal (systemd says
//! so in `$JOURNAL_STREAM`: the device and inode of the stream it gave),
//! every line starts with its syslog priority (`<3>` error, `<4>` warning,
//! `<6>` info, `<7>` debug and trace), which journald takes off and keeps
//! as the entry's priority; lines for people then carry no timestamp of
//! their own, the journal keeps one.

use crate::cli::LogFormat;
use std::io::IsTerminal;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Log in `format`, what `RUST_LOG` lets through (else `default_filter`).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match (format, stderr_is_journal()) {
        (LogFormat::Text, false) => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        (LogFormat::Json, false) => logs.json().flatten_event(true).with_span_list(false).init(),
        (LogFormat::Text, true) => {
            let lines = format::format().without_time().with_ansi(false);
            logs.event_format(Prioritized(lines)).init()
        }
        (LogFormat::Json, true) => {
            let objects = format::format()
                .json()
                .flatten_event(true)
                .with_span_list(false);
            logs.fmt_fields(JsonFields::new())
                .event_format(Prioritized(objects))
                .init()
        }
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
