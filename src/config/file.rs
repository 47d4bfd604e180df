//! `zava-mcp.toml`: found, read and checked key by key before any command runs.
//!
//! Every key must be one of [`super::keys::KEYS`] and every value must pass the same value parser its flag
//! uses, so a misspelt key or a value out of range stops the start with a message naming the key, the file and
//! what is accepted, instead of being ignored.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Arg, ArgAction, Command};

use super::keys::{self, Key, SECTIONS};

/// The file looked for in the working directory when neither `--config` nor `ZAVA_CONFIG` names one.
pub(crate) const DEFAULT_FILE: &str = "zava-mcp.toml";

/// The configuration file, read and checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConfigFile {
    pub path: PathBuf,
    /// Each key set, with its values as command-line text (one, or several for a list).
    pub entries: Vec<(&'static Key, Vec<String>)>,
}

/// Which file to read: `--config PATH` (or `--config=PATH`) on the command line, else `ZAVA_CONFIG`, else
/// `./zava-mcp.toml` when it exists. The flag is read here, before clap, because it decides what clap's
/// defaults are; clap defines it too, so that `--help` shows it and it parses like every other flag.
pub(crate) fn locate(args: &[OsString]) -> Result<Option<PathBuf>> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return match iter.next() {
                Some(path) => Ok(Some(PathBuf::from(path))),
                None => bail!("--config needs the path of a configuration file"),
            };
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Ok(Some(PathBuf::from(path)));
        }
    }
    if let Some(path) = super::environment::value("ZAVA_CONFIG")? {
        return Ok(Some(PathBuf::from(path)));
    }
    let default = Path::new(DEFAULT_FILE);
    Ok(default.is_file().then(|| default.to_path_buf()))
}

impl ConfigFile {
    /// Reads and checks the file: known sections and keys, values of the right shape and accepted by `cli`'s
    /// value parsers.
    pub fn read(path: &Path, cli: &Command) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("configuration file {}: cannot read it: {e}", path.display()))?;
        Self::parse(path, &text, cli)
    }

    pub fn parse(path: &Path, text: &str, cli: &Command) -> Result<ConfigFile> {
        let shown = path.display();
        let table: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{shown}: not valid TOML: {e}"))?;
        let mut entries = Vec::new();
        for (section, body) in &table {
            if !SECTIONS.iter().any(|(s, _)| s == section) {
                let hint = did_you_mean(keys::nearest(section, SECTIONS.iter().map(|(s, _)| *s)));
                let all: Vec<&str> = SECTIONS.iter().map(|(s, _)| *s).collect();
                bail!("{shown}: unknown section [{section}]{hint}; the sections are {}", all.join(", "));
            }
            let toml::Value::Table(body) = body else {
                bail!("{shown}: `{section}` must be a section ([{section}]) holding keys, not a value");
            };
            for (name, value) in body {
                let Some(key) = keys::find(section, name) else {
                    let names = || keys::in_section(section).map(|k| k.name);
                    let hint = did_you_mean(keys::nearest(name, names()));
                    bail!(
                        "{shown}: unknown key `{name}` in [{section}]{hint}; the keys there are {}",
                        names().collect::<Vec<_>>().join(", ")
                    );
                };
                let arg = find_arg(cli, key).unwrap_or_else(|| panic!("no argument for key {}", key.dotted()));
                let values = as_command_line(key, arg, value).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
                check(key, arg, &values).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
                entries.push((key, values));
            }
        }
        Ok(ConfigFile { path: path.to_path_buf(), entries })
    }
}

fn did_you_mean(nearest: Option<&str>) -> String {
    nearest.map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default()
}

/// The argument `key` sets, wherever it is defined in the command tree.
pub(crate) fn find_arg<'a>(cmd: &'a Command, key: &Key) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| is_for(a, key)).or_else(|| cmd.get_subcommands().find_map(|sc| find_arg(sc, key)))
}

/// Whether `arg` is the one `key` sets: the same id and the same environment variable (an argument of another
/// command may share the id with another meaning, as `token --rls-user-id` does).
pub(crate) fn is_for(arg: &Arg, key: &Key) -> bool {
    arg.get_id().as_str() == key.arg && arg.get_env().and_then(|e| e.to_str()) == Some(key.env)
}

/// Whether an argument takes several values (a list in the file).
pub(crate) fn is_list(arg: &Arg) -> bool {
    arg.get_value_delimiter().is_some() || matches!(arg.get_action(), ArgAction::Append)
}

/// Whether an argument is an on/off switch (`true`/`false` in the file).
pub(crate) fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

/// A TOML value as the text a person would type on the command line.
fn as_command_line(key: &Key, arg: &Arg, value: &toml::Value) -> std::result::Result<Vec<String>, String> {
    let dotted = key.dotted();
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("{dotted} must be a string or a number, not {}", other.type_str())),
    };
    if is_switch(arg) {
        return match value {
            toml::Value::Boolean(b) => Ok(vec![b.to_string()]),
            other => Err(format!("{dotted} is a switch: write true or false, not {other}")),
        };
    }
    match value {
        toml::Value::Array(items) if is_list(arg) => items.iter().map(scalar).collect(),
        toml::Value::Array(_) => Err(format!("{dotted} takes one value, not a list")),
        toml::Value::String(s) if is_list(arg) => Ok(s.split(',').map(|v| v.trim().to_owned()).collect()),
        toml::Value::Boolean(_) => Err(format!("{dotted} is not a switch: write a value, not {value}")),
        v => scalar(v).map(|s| vec![s]),
    }
}

/// Runs the argument's own value parser over the file's values.
fn check(key: &Key, arg: &Arg, values: &[String]) -> std::result::Result<(), String> {
    if is_switch(arg) {
        return Ok(());
    }
    let long = arg.get_long().unwrap_or(key.arg).to_owned();
    let mut probe =
        Arg::new("value").long(long.clone()).action(ArgAction::Append).value_parser(arg.get_value_parser().clone());
    if let Some(names) = arg.get_value_names() {
        probe = probe.value_names(names.to_vec());
    }
    let argv = values.iter().flat_map(|v| [format!("--{long}"), v.clone()]);
    match Command::new("zava-mcp.toml").no_binary_name(true).arg(probe).try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{} = {}: {}", key.dotted(), show(values), reason(&e))),
    }
}

/// A clap error's message on one line, without its "error:" and usage lines.
pub(crate) fn reason(e: &clap::Error) -> String {
    e.render()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:"))
        .map(|l| l.trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join("; ")
}

fn show(values: &[String]) -> String {
    match values {
        [one] => format!("{one:?}"),
        many => format!("{many:?}"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    fn parse(text: &str) -> Result<ConfigFile> {
        ConfigFile::parse(Path::new("zava-mcp.toml"), text, &Cli::command())
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn values_of_every_shape_become_command_line_text() {
        let file = parse(
            "[limits]\nmax_rows = 50\nrate_limit = [\"10/s\", \"head_office=off\"]\n\
             [audit]\nhash_subjects = true\n[http]\nallowed_hosts = \"a.example, b.example\"\n\
             [embedding]\ntimeout = 2.5\n",
        )
        .unwrap();
        let got: Vec<(String, Vec<String>)> = file.entries.iter().map(|(k, v)| (k.dotted(), v.clone())).collect();
        let want = [
            ("limits.max_rows", vec!["50"]),
            ("limits.rate_limit", vec!["10/s", "head_office=off"]),
            ("audit.hash_subjects", vec!["true"]),
            ("http.allowed_hosts", vec!["a.example", "b.example"]),
            ("embedding.timeout", vec!["2.5"]),
        ];
        for (key, values) in want {
            let values: Vec<String> = values.into_iter().map(String::from).collect();
            assert!(got.contains(&(key.to_owned(), values)), "{key} in {got:?}");
        }
    }

    #[test]
    fn unknown_sections_and_keys_are_named_with_a_suggestion() {
        let e = error("[limits]\nmax_row = 5\n");
        assert!(e.contains("unknown key `max_row` in [limits] (did you mean `max_rows`?)"), "{e}");
        assert!(e.contains("max_result_bytes"), "the keys are listed: {e}");
        let e = error("[limit]\nmax_rows = 5\n");
        assert!(e.contains("unknown section [limit] (did you mean `limits`?)"), "{e}");
        let e = error("max_rows = 5\n");
        assert!(e.contains("unknown section [max_rows]"), "{e}");
        let e = error("[limits]\nmax_rows = \n");
        assert!(e.contains("not valid TOML"), "{e}");
    }

    #[test]
    fn values_out_of_range_or_of_the_wrong_kind_name_the_key_and_what_is_accepted() {
        let e = error("[limits]\nmax_rows = 0\n");
        assert!(e.contains("limits.max_rows = \"0\"") && e.contains("1..=100000"), "{e}");
        let e = error("[identity]\nmode = \"jwtt\"\n");
        assert!(e.contains("identity.mode") && e.contains("possible values: header, jwt, api-key"), "{e}");
        let e = error("[audit]\nhash_subjects = \"yes\"\n");
        assert!(e.contains("audit.hash_subjects is a switch: write true or false"), "{e}");
        let e = error("[database]\npool_size = true\n");
        assert!(e.contains("database.pool_size is not a switch"), "{e}");
        let e = error("[database]\npool_size = [1, 2]\n");
        assert!(e.contains("takes one value, not a list"), "{e}");
        let e = error("[http]\nlisten = \"localhost:eighty\"\n");
        assert!(e.contains("http.listen"), "{e}");
        let e = error("[telemetry]\nmetrics = \"sometimes\"\n");
        assert!(e.contains("telemetry.metrics"), "{e}");
    }

    #[test]
    fn the_config_flag_is_found_before_clap_runs() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(locate(&args(&["z", "serve", "--config", "a.toml"])).unwrap(), Some("a.toml".into()));
        assert_eq!(locate(&args(&["z", "--config=b.toml", "serve"])).unwrap(), Some("b.toml".into()));
        assert!(locate(&args(&["z", "serve", "--config"])).is_err());
    }
}
