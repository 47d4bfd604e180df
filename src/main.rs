//! The `zava-mcp` binary: parse the command line, set up logging, run. Nothing else lives here.

use zava_mcp::config::{Layers, LoadError};
use zava_mcp::telemetry::subscriber::Telemetry;

fn main() -> std::process::ExitCode {
    // SAFETY: nothing else runs yet; the runtime and its threads start below.
    unsafe { zava_mcp::embed::local::prefer_one_thread_per_batch() };
    // The runtime's threads have the SQL guard's stack, so the guard runs on them without a hand-off.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    match zava_mcp::guard::guard_sized(runtime.enable_all()).build() {
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
    let global = &layers.cli.global;
    let telemetry = match Telemetry::install(&global.log, global.log_format, &global.traces()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    for warning in &layers.warnings {
        tracing::warn!("{warning}");
    }
    let result = zava_mcp::cli::run(layers).await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
