//! The `sigd` binary: parse the command line, set up logging, settle the
//! capabilities, run.

use sigd::cli::{Command, LogFormat};
use std::process::ExitCode;

fn main() -> ExitCode {
    // The daemon's first act: a SIGHUP from here on never ends it.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|command| command == "serve")
    {
        sigd::serve::ignore_early_hangups();
    }
    // SAFETY: no other thread has started yet.
    let env_token = unsafe { sigd::auth::take_env_token() };
    let cli = match sigd::config::parse(env_token.is_some()) {
        Ok(sigd::config::Parsed {
            print: Some(config),
            ..
        }) => {
            print!("{config}");
            return ExitCode::SUCCESS;
        }
        Ok(parsed) => parsed.cli,
        Err(error) => {
            eprintln!("sigd: {}", sigd::logs::contained(&format!("{error:#}")));
            return ExitCode::FAILURE;
        }
    };
    // The daemon logs what it does; the policy commands print a report and
    // log only what went wrong.
    let (format, default_filter) = match &cli.command {
        Command::Serve(args) => (args.log_format, "info"),
        Command::Policy(_) => (LogFormat::Text, "warn"),
    };
    let mut log_writer = sigd::logs::init(format, default_filter);
    // Before the async runtime (or the log writer) starts any thread: every
    // thread inherits it.
    if let Command::Serve(args) = &cli.command
        && let Err(error) = sigd::privileges::settle_for(args)
    {
        drop(log_writer);
        eprintln!("sigd: {}", sigd::logs::contained(&error.to_string()));
        return ExitCode::FAILURE;
    }
    log_writer.start();
    let runtime = match sigd::logs::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sigd: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => sigd::serve::run(args, env_token).await.map(|()| true),
            Command::Policy(command) => command.run().await,
        }
    });
    // What was logged goes out before the last word.
    drop(log_writer);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("sigd: {}", sigd::logs::contained(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}
