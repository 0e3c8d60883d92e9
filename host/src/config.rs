//! Where `sigd serve`'s settings come from, besides its flags: a TOML file
//! (`--config`, one key per flag, named as the flag: `max-connections =
//! 2048`, `listen = ["127.0.0.1:9000"]`) and `SIGD_*` environment variables
//! (`SIGD_MAX_CONNECTIONS=2048`, lists comma-separated). A flag wins over
//! the environment, which wins over the file. [`parse`] folds them into the
//! command line clap parses, so each setting keeps one definition (its
//! flag, in `cli.rs` or `options.rs`) and one check; [`print`] shows the
//! result (`--print-config`). The token is never a setting: it stays in a
//! file (`--token-file`) or `SIGD_TOKEN`.

use crate::auth::TOKEN_ENV;
use crate::cli::Cli;
use crate::trusted_file::{self, Kind};
use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::Path;

/// The flags of `serve` that name where settings come from, not settings.
const NOT_SETTINGS: [&str; 3] = ["config", "print-config", "help"];

/// The command line, parsed, and what `--print-config` prints if given.
pub struct Parsed {
    pub cli: Cli,
    /// The effective configuration, if `--print-config` asks for it.
    pub print: Option<String>,
}

/// The command line `std::env::args_os()` holds, with the settings of
/// `--config` and `SIGD_*` added for every flag it does not give; clap's
/// error (and exit) for a bad command line, an error for a bad file.
/// `env_token`: whether `SIGD_TOKEN` held a token (`--print-config` says
/// so, and never what it is).
pub fn parse(env_token: bool) -> anyhow::Result<Parsed> {
    let given: Vec<OsString> = std::env::args_os().collect();
    // Made once (clap builds every flag of every command): a tenth of
    // sigd's start-up was spent making it three times.
    let mut command = Cli::command();
    let matches = command
        .try_get_matches_from_mut(&given)
        .unwrap_or_else(|error| error.exit());
    let Some(("serve", serve)) = matches.subcommand() else {
        let cli = Cli::from_arg_matches(&matches)?;
        return Ok(Parsed { cli, print: None });
    };
    let settings = settings(&command);
    let file = match serve.get_one::<std::path::PathBuf>("config") {
        Some(path) => read(path, &settings)?,
        None => toml::Table::new(),
    };
    let mut added = Vec::new();
    let mut sources = Vec::new();
    for setting in &settings {
        let long = &setting.long;
        let source = if serve.value_source(&setting.id) == Some(ValueSource::CommandLine) {
            "flag".to_string()
        } else if let Ok(value) = std::env::var(env_name(long)) {
            let values = value.split(',').map(str::to_string).collect();
            added.extend(as_flags(setting, values, &env_name(long))?);
            env_name(long)
        } else if let Some(value) = file.get(long) {
            let values = file_values(long, value)?;
            added.extend(as_flags(setting, values, long)?);
            "config file".to_string()
        } else {
            "default".to_string()
        };
        sources.push(source);
    }
    // What the file and environment add go before the flags as given, just
    // after `serve`.
    let matches = match added.is_empty() {
        true => matches,
        false => {
            let serve_at = given.iter().position(|arg| arg == "serve").unwrap_or(1);
            let mut line: Vec<OsString> = given[..=serve_at].to_vec();
            line.extend(added.into_iter().map(OsString::from));
            line.extend(given[serve_at + 1..].iter().cloned());
            command
                .try_get_matches_from_mut(line)
                .unwrap_or_else(|error| error.exit())
        }
    };
    let print = match matches.subcommand() {
        Some(("serve", serve)) if serve.get_flag("print_config") => {
            Some(print(serve, &settings, &sources, env_token))
        }
        _ => None,
    };
    let cli = Cli::from_arg_matches(&matches)?;
    Ok(Parsed { cli, print })
}

/// The `--config` file's keys, each one a flag of `serve`; an unknown key
/// is refused by name.
fn read(path: &Path, settings: &[Setting]) -> anyhow::Result<toml::Table> {
    let shown = path.display();
    // It names the policy, the tokens, who may connect: held as they are.
    let text = trusted_file::read_text(path, Kind::Decisive)
        .with_context(|| format!("cannot read config {shown}"))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("config {shown}"))?;
    let known: Vec<&str> = settings
        .iter()
        .map(|setting| setting.long.as_str())
        .collect();
    if let Some(unknown) = table.keys().find(|key| !known.contains(&key.as_str())) {
        bail!(
            "config {shown}: unknown key {unknown:?}; the keys are the flags of `sigd serve` \
             without their dashes: {}",
            known.join(", ")
        );
    }
    Ok(table)
}

/// One setting of `serve`: a flag.
struct Setting {
    /// Its name: the flag without dashes, the config file's key.
    long: String,
    /// clap's id for it (the field's name).
    id: String,
    /// Whether it takes a value (else it is a switch).
    takes_value: bool,
    /// Whether it may be given several times (its key holds an array).
    repeats: bool,
}

/// Every setting of `serve`, as cli.rs and options.rs define them.
fn settings(command: &clap::Command) -> Vec<Setting> {
    let Some(serve) = command.find_subcommand("serve") else {
        return Vec::new(); // unreachable: `serve` is defined in cli.rs
    };
    serve
        .get_arguments()
        .filter_map(|arg| {
            Some(Setting {
                long: arg.get_long()?.to_string(),
                id: arg.get_id().to_string(),
                takes_value: arg.get_action().takes_values(),
                repeats: matches!(arg.get_action(), clap::ArgAction::Append),
            })
        })
        .filter(|setting| !NOT_SETTINGS.contains(&setting.long.as_str()))
        .collect()
}

/// `SIGD_MAX_CONNECTIONS` for `max-connections`.
pub fn env_name(long: &str) -> String {
    format!("SIGD_{}", long.replace('-', "_").to_ascii_uppercase())
}

/// A file value as the words of a command line: a string, number or
/// boolean is one, an array one per element.
fn file_values(long: &str, value: &toml::Value) -> anyhow::Result<Vec<String>> {
    let one = |value: &toml::Value| match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Boolean(switch) => Ok(switch.to_string()),
        other => bail!("config key {long:?}: {other} is not a string, number or boolean"),
    };
    match value {
        toml::Value::Array(values) => values.iter().map(one).collect(),
        value => Ok(vec![one(value)?]),
    }
}

/// `--long value` for each value, or `--long` for a switch set true (`from`
/// names where it came from, for the error).
fn as_flags(setting: &Setting, values: Vec<String>, from: &str) -> anyhow::Result<Vec<String>> {
    let flag = format!("--{}", setting.long);
    if setting.takes_value {
        return Ok(values
            .into_iter()
            .flat_map(|value| [flag.clone(), value])
            .collect());
    }
    match values.as_slice() {
        [switch] if switch == "true" || switch == "1" => Ok(vec![flag]),
        [switch] if switch == "false" || switch == "0" => Ok(Vec::new()),
        _ => bail!("{from}: a switch is true or false, not {values:?}"),
    }
}

/// The effective configuration of `serve` (`serve`'s matches, and where
/// each setting came from, in [`settings`]'s order), as a config file
/// would hold it, each source in a comment. The token itself never
/// appears: `SIGD_TOKEN` is only said to be set.
fn print(serve: &ArgMatches, settings: &[Setting], sources: &[String], env_token: bool) -> String {
    let mut out = match env_token {
        true => format!("# token: given in {TOKEN_ENV} (redacted)\n"),
        false => String::new(),
    };
    for (setting, from) in settings.iter().zip(sources) {
        let values: Vec<String> = serve
            .get_raw(&setting.id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match (setting.takes_value, values.as_slice()) {
            (false, _) => serve.get_flag(&setting.id).to_string(),
            (true, []) => {
                out.push_str(&format!("# {} is not set\n", setting.long));
                continue;
            }
            (true, [one]) if !setting.repeats => toml_string(one),
            (true, many) => {
                let many: Vec<String> = many.iter().map(|v| toml_string(v)).collect();
                format!("[{}]", many.join(", "))
            }
        };
        out.push_str(&format!("{} = {value} # {from}\n", setting.long));
    }
    out
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}
