//! The `zava-mcp` binary: parse the command line, set up logging, run. Nothing else lives here.

use tracing_subscriber::EnvFilter;
use zava_mcp::config::{Layers, LoadError};

fn main() -> std::process::ExitCode {
    // SAFETY: nothing else runs yet; the runtime and its threads start below.
    unsafe { zava_mcp::embed::local::prefer_one_thread_per_batch() };
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    let layers = match Layers::load(std::env::args_os().collect()) {
        Ok(layers) => layers,
        Err(LoadError::Clap { error, note }) => {
            let _ = error.print();
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            return std::process::ExitCode::from(error.exit_code() as u8);
        }
        Err(LoadError::Config(e)) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let cli = &layers.cli;
    // Migration and driver chatter (NOTICEs such as "already exists, skipping") is noise for a person. rmcp's debug
    // lines carry every request and response in full (other stores' rows, customers' emails), so rmcp never logs
    // below info, whatever the filter asks.
    let directives = format!("{},refinery=warn,refinery_core=warn,tokio_postgres=warn,rmcp=info", cli.global.log);
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    // A closed stderr (the reader went away) must never take a request or the shutdown down with it:
    // failed log writes are dropped instead of reported (reporting them would panic on the same stderr).
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .log_internal_errors(false);
    match cli.global.log_format.resolved() {
        // One object per line; the fields of the spans around an event (a tool call's request id, tool and
        // tenant) are on it too.
        zava_mcp::cli::LogFormat::Json => {
            fmt.json().flatten_event(true).with_current_span(true).with_span_list(false).init()
        }
        _ => fmt.init(),
    }
    for warning in &layers.warnings {
        tracing::warn!("{warning}");
    }
    match zava_mcp::cli::run(layers).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
