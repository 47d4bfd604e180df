//! `config check` and `config example`: the configuration a person can see and check before serving with it.

use clap::CommandFactory;

use super::serve::ServePlan;
use super::*;
use crate::config::{Layers, report};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration `serve` would run with (the file, the environment, and any serve flags given
    /// here) without starting anything, and print it as TOML: every setting with where its value came from,
    /// secrets masked. Exits non-zero, naming the setting, when a value is not accepted.
    Check(Box<ServeArgs>),
    /// Print a commented example configuration file with every key, its help and its default (the same as
    /// zava-mcp.example.toml in the repository).
    Example,
}

pub(super) async fn config(layers: &Layers, cmd: &ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Example => {
            print!("{}", report::example(&Cli::command()));
            Ok(())
        }
        ConfigCommand::Check(args) => {
            let cli = Cli::command();
            let leaf = cli
                .find_subcommand("config")
                .and_then(|c| c.find_subcommand("check"))
                .expect("config check is a command");
            let mut leaf = leaf.clone();
            // The global flags are on the root until clap builds the tree; show them with the command's own.
            for arg in cli.get_arguments().filter(|a| a.is_global_set()) {
                leaf = leaf.arg(arg.clone());
            }
            print!("{}", report::effective(layers, &leaf));
            for warning in &layers.warnings {
                println!("# warning: {warning}");
            }
            check(&layers.cli, args).context("the configuration is not usable")?;
            println!("\n# ok: the configuration is valid for `serve`");
            Ok(())
        }
    }
}

/// Everything `serve` would check before it starts, and nothing that needs the database or the network.
fn check(cli: &Cli, args: &ServeArgs) -> Result<()> {
    cli.settings()?;
    ServePlan::of(args)?;
    args.server.settings(false)?;
    args.server.throttle()?;
    EmbeddingSettings::resolve(&args.embedding)?;
    for (flag, path) in [("--api-keys-file", &args.jwt.api_keys_file), ("--identity-map", &args.jwt.identity_map)] {
        if let Some(path) = path {
            std::fs::metadata(path).with_context(|| format!("{flag} {}: cannot read it", path.display()))?;
        }
    }
    Ok(())
}
