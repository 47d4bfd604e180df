//! The configuration's layers and where each value came from: defaults < `zava-mcp.toml` < environment
//! (`NAME`, or `NAME_FILE` for a value kept in a file) < command line.
//!
//! clap already merges three of the layers (a flag beats its environment variable, which beats the default).
//! The file enters below the environment by becoming the defaults of the arguments it sets, and a `NAME_FILE`
//! enters just above it the same way (it is environment, and `NAME` itself is then unset). So one definition per
//! setting (the clap argument) gives its flag, variable, file key, default, validation and help, and there is no
//! second schema to drift from it.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};

use super::environment::{self, EnvSource};
use super::file::{self, ConfigFile};
use super::keys;
use crate::cli::Cli;

/// Variables zava-mcp reads that are not a flag's.
pub(crate) const OTHER_VARIABLES: &[&str] = &[
    "ZAVA_CONFIG",
    "ZAVA_CONTEXT_KEY",
    "ZAVA_PG_BIN",
    // Read by build.rs when zava-mcp is built (cargo also sets them for the tests it runs).
    "ZAVA_GIT_REVISION",
    "ZAVA_BUILD_DATE",
    "POSTGRES_DB_HOST",
    "POSTGRES_DB_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_APPLICATION_NAME",
];

/// Where a setting's value came from, for `config check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    EnvFile { var: String, path: PathBuf },
    CommandLine,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::EnvFile { var, path } => write!(f, "env {var} ({})", path.display()),
            Origin::CommandLine => write!(f, "command line"),
        }
    }
}

/// The command line parsed over every layer, with what is needed to tell where each value came from.
#[derive(Debug)]
pub struct Layers {
    pub cli: Cli,
    pub file: Option<PathBuf>,
    /// Messages for the log once it is set up (unknown `ZAVA_*` variables).
    pub warnings: Vec<String>,
    matches: ArgMatches,
    /// Arguments whose default was replaced, by argument id: by the file or by a `NAME_FILE`.
    replaced: HashMap<String, Origin>,
}

/// Why the command line could not be read.
#[derive(Debug)]
pub enum LoadError {
    /// clap's own answer (also `--help` and `--version`), with a note on which layer gave a bad value.
    Clap {
        error: clap::Error,
        note: Option<String>,
    },
    Config(anyhow::Error),
}

impl Layers {
    /// Reads every layer for `args` (the process's arguments, program name first).
    pub fn load(args: Vec<OsString>) -> Result<Layers, LoadError> {
        let mut cmd = Cli::command();
        let path = file::locate(&args).map_err(LoadError::Config)?;
        let config = match &path {
            Some(p) => ConfigFile::read(p, &cmd).map_err(LoadError::Config)?,
            None => ConfigFile::default(),
        };
        let mut replaced = HashMap::new();
        let mut defaults: HashMap<(String, String), Vec<String>> = HashMap::new();
        for (key, values) in &config.entries {
            defaults.insert((key.arg.to_owned(), key.env.to_owned()), values.clone());
            replaced.insert(key.arg.to_owned(), Origin::File(config.path.clone()));
        }
        for env in variables(&cmd) {
            let Some((value, EnvSource::File(path))) = environment::var(&env).map_err(LoadError::Config)? else {
                continue;
            };
            for arg in all_args(&cmd).filter(|a| a.get_env().and_then(|e| e.to_str()) == Some(env.as_str())) {
                let values = match file::is_list(arg) {
                    true => value.split(',').map(|v| v.trim().to_owned()).collect(),
                    false => vec![value.clone()],
                };
                defaults.insert((arg.get_id().to_string(), env.clone()), values);
                let origin = Origin::EnvFile { var: format!("{env}_FILE"), path: path.clone() };
                replaced.insert(arg.get_id().to_string(), origin);
            }
        }
        cmd = with_defaults(cmd, &defaults);
        let warnings = unknown_variables(&variables(&cmd));
        let matches = cmd.clone().try_get_matches_from(args).map_err(|error| {
            let note = note_for(&cmd, &error, &replaced);
            LoadError::Clap { error, note }
        })?;
        let cli = Cli::from_arg_matches(&matches).map_err(|error| LoadError::Clap { error, note: None })?;
        Ok(Layers { cli, file: path, warnings, matches, replaced })
    }

    /// The matches of the command that runs (`config check` for that command), for [`Self::origin`].
    pub(crate) fn leaf(&self) -> &ArgMatches {
        let mut m = &self.matches;
        while let Some((_, sub)) = m.subcommand() {
            m = sub;
        }
        m
    }

    /// Where the value of argument `id` came from, or `None` when it has none.
    pub(crate) fn origin(&self, id: &str, env: Option<&str>) -> Option<Origin> {
        let m = self.leaf();
        match m.try_get_raw(id).ok().flatten().and(m.value_source(id))? {
            ValueSource::CommandLine => Some(Origin::CommandLine),
            ValueSource::EnvVariable => Some(Origin::Env(env.unwrap_or("?").to_owned())),
            ValueSource::DefaultValue => Some(self.replaced.get(id).cloned().unwrap_or(Origin::Default)),
            _ => Some(Origin::Default),
        }
    }
}

/// Every argument in the command tree.
fn all_args(cmd: &Command) -> Box<dyn Iterator<Item = &clap::Arg> + '_> {
    Box::new(cmd.get_arguments().chain(cmd.get_subcommands().flat_map(all_args)))
}

/// Every environment variable an argument reads.
fn variables(cmd: &Command) -> BTreeSet<String> {
    all_args(cmd).filter_map(|a| a.get_env()?.to_str().map(str::to_owned)).collect()
}

/// The tree with the given defaults, keyed by argument id and variable.
/// A variable set to nothing counts as unset (as `NAME=` in a compose file or a shell means), so the argument
/// stops reading it rather than taking an empty value.
fn with_defaults(cmd: Command, defaults: &HashMap<(String, String), Vec<String>>) -> Command {
    cmd.mut_args(|a| {
        let env = a.get_env().and_then(|e| e.to_str()).unwrap_or_default().to_owned();
        let blank = !env.is_empty() && std::env::var_os(&env).is_some_and(|v| v.to_string_lossy().trim().is_empty());
        let a = if blank { a.env(None::<&str>) } else { a };
        match defaults.get(&(a.get_id().to_string(), env)) {
            Some(values) => a.default_values(values.clone()),
            None => a,
        }
    })
    .mut_subcommands(|sc| with_defaults(sc, defaults))
}

/// `ZAVA_*` variables that are set but are no setting: a misspelt one would otherwise be ignored unnoticed.
fn unknown_variables(known: &BTreeSet<String>) -> Vec<String> {
    let known_name = |name: &str| {
        let base = name.strip_suffix("_FILE").unwrap_or(name);
        known.contains(base) || OTHER_VARIABLES.contains(&base)
    };
    let mut warnings = Vec::new();
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("ZAVA_") || known_name(name) {
            continue;
        }
        // Compared without the prefix every candidate shares, which would make anything look close.
        let candidates = known.iter().map(String::as_str).chain(OTHER_VARIABLES.iter().copied());
        let candidates = candidates.filter_map(|c| c.strip_prefix("ZAVA_"));
        let hint = keys::nearest(&name["ZAVA_".len()..], candidates)
            .map(|n| format!(" (did you mean ZAVA_{n}?)"))
            .unwrap_or_default();
        warnings.push(format!("environment variable {name} is not a zava-mcp setting and is ignored{hint}"));
    }
    warnings
}

/// For a bad value that did not come from the command line: which variable or file gave it.
fn note_for(cmd: &Command, error: &clap::Error, replaced: &HashMap<String, Origin>) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let ContextValue::String(shown) = error.get(ContextKind::InvalidArg)? else { return None };
    let long = shown.trim_start_matches("--").split([' ', '=']).next()?;
    let arg = all_args(cmd).find(|a| a.get_long() == Some(long))?;
    let env = arg.get_env().and_then(|e| e.to_str());
    if let Some(env) = env
        && std::env::var_os(env).is_some_and(|v| !v.is_empty())
    {
        return Some(format!("the value came from the environment variable {env}"));
    }
    replaced.get(arg.get_id().as_str()).map(|origin| format!("the value came from {origin}"))
}
