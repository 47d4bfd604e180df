//! What `zava-mcp config check` and `zava-mcp config example` print: the effective configuration as a TOML
//! file, each value with where it came from and secrets masked, and the commented example file (kept in the
//! repository as `zava-mcp.example.toml`, checked equal to this output by a test).

use std::fmt::Write;

use clap::{Arg, Command};

use super::file::{self, find_arg, is_for};
use super::keys::{SECTIONS, in_section};
use super::layers::{Layers, OTHER_VARIABLES};

/// Width of the `key = value` column before the origin comment.
const COLUMN: usize = 52;

/// The effective configuration of the command `leaf` (the arguments `config check` takes), as TOML.
pub(crate) fn effective(layers: &Layers, leaf: &Command) -> String {
    let mut out = String::new();
    match &layers.file {
        Some(path) => writeln!(out, "# configuration file: {}", path.display()).unwrap(),
        None => writeln!(
            out,
            "# no configuration file (none given with --config or ZAVA_CONFIG, and no ./{} here)",
            file::DEFAULT_FILE
        )
        .unwrap(),
    }
    writeln!(out, "# each value: where it came from (default < file < environment < command line)").unwrap();
    let values = layers.leaf();
    for (section, _) in SECTIONS {
        let keys: Vec<_> =
            in_section(section).filter_map(|k| Some((k, leaf.get_arguments().find(|a| is_for(a, k))?))).collect();
        if keys.is_empty() {
            continue;
        }
        writeln!(out, "\n[{section}]").unwrap();
        for (key, arg) in keys {
            let raw: Option<Vec<String>> = values
                .try_get_raw(key.arg)
                .ok()
                .flatten()
                .map(|vals| vals.map(|v| v.to_string_lossy().into_owned()).collect());
            let origin = layers.origin(key.arg, Some(key.env));
            match (raw, origin) {
                (Some(raw), Some(origin)) => {
                    let line = format!("{} = {}", key.name, toml_value(arg, &raw, arg.is_hide_env_values_set()));
                    writeln!(out, "{line:<COLUMN$}  # {origin}").unwrap();
                }
                _ => writeln!(out, "# {} is not set", key.name).unwrap(),
            }
        }
    }
    let others: Vec<String> = OTHER_VARIABLES
        .iter()
        .filter(|v| **v != "ZAVA_CONFIG")
        .filter_map(|v| {
            let (value, source) = super::environment::var(v).ok().flatten()?;
            let secret = matches!(*v, "POSTGRES_PASSWORD" | "ZAVA_CONTEXT_KEY");
            let shown = if secret { "****".to_owned() } else { value };
            let from = match source {
                super::environment::EnvSource::Variable => String::new(),
                super::environment::EnvSource::File(p) => format!(" (from {v}_FILE {})", p.display()),
            };
            Some(format!("#   {v}={shown}{from}"))
        })
        .collect();
    if !others.is_empty() {
        writeln!(out, "\n# also read from the environment:\n{}", others.join("\n")).unwrap();
    }
    out
}

/// The commented example file: every key with its help, variable, flag and default, all commented out.
pub(crate) fn example(cli: &Command) -> String {
    let mut out = String::from(
        "# zava-mcp.toml: an example configuration file, printed by `zava-mcp config example`.\n\
         #\n\
         # zava-mcp reads the file given with --config PATH or ZAVA_CONFIG, else ./zava-mcp.toml when it exists.\n\
         # Each setting can also be given as an environment variable or a flag; the command line wins over the\n\
         # environment, which wins over this file, which wins over the defaults. Any variable NAME may be given as\n\
         # NAME_FILE, the path of a file holding the value (container secrets). An unknown key or a bad value stops\n\
         # zava-mcp with a message naming it. `zava-mcp config check` prints what is in effect and where each\n\
         # value came from.\n\
         #\n\
         # Every line below is commented out and shows the default: uncomment and change what you need.\n",
    );
    for (section, about) in SECTIONS {
        writeln!(out, "\n[{section}]\n# {about}").unwrap();
        for key in in_section(section) {
            let arg = find_arg(cli, key).expect("every key has an argument (a unit test checks)");
            out.push('\n');
            let mut help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
            // clap drops the full stop of a one-sentence help; a comment reads better with it.
            if !help.ends_with(['.', ')', ':']) {
                help.push('.');
            }
            for line in wrap(&help, 100 - 2) {
                writeln!(out, "# {line}").unwrap();
            }
            let flag = arg.get_long().map(|l| format!(", flag --{l}")).unwrap_or_default();
            writeln!(out, "# (env {}{flag})", key.env).unwrap();
            let defaults: Vec<String> =
                arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
            if defaults.is_empty() {
                let placeholder =
                    arg.get_value_names().and_then(|n| n.first()).map_or("VALUE".into(), |n| n.to_string());
                writeln!(out, "# {} = {}   (not set by default)", key.name, toml_value(arg, &[placeholder], false))
                    .unwrap();
            } else {
                writeln!(out, "# {} = {}", key.name, toml_value(arg, &defaults, false)).unwrap();
            }
        }
    }
    out
}

/// Values as TOML: a list for list settings, a bare switch or number, a quoted string otherwise.
fn toml_value(arg: &Arg, values: &[String], secret: bool) -> String {
    let one = |v: &String| {
        let v = if secret { mask(v) } else { v.clone() };
        let bare = file::is_switch(arg) || (!v.is_empty() && v.parse::<f64>().is_ok() && !v.starts_with('+'));
        if bare { v } else { toml::Value::String(v).to_string() }
    };
    if file::is_list(arg) {
        format!("[{}]", values.iter().map(one).collect::<Vec<_>>().join(", "))
    } else {
        values.first().map(one).unwrap_or_default()
    }
}

/// A secret as it may be shown: a URL keeps everything but its password; anything else is `****`.
pub(crate) fn mask(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else { return "****".into() };
    let rest = &value[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:****@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", masked.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{}://{authority}{tail}", &value[..scheme_end])
}

/// Words of `text` in lines of at most `width` characters (paragraphs kept).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split("\n\n") {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines.into_iter().map(|l| l.trim_end().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn passwords_in_urls_and_whole_secrets_are_masked() {
        assert_eq!(mask("postgres://zava:s3cret@db:5432/zava"), "postgres://zava:****@db:5432/zava");
        assert_eq!(mask("redis://:pw@cache:6379/0"), "redis://:****@cache:6379/0");
        assert_eq!(mask("postgres://db/zava?user=z&password=s3cret"), "postgres://db/zava?user=z&password=****");
        assert_eq!(mask("postgres://zava@db/zava"), "postgres://zava@db/zava");
        assert_eq!(mask("sk-live-123"), "****");
    }

    #[test]
    fn every_argument_with_a_variable_has_a_key_and_every_key_its_argument() {
        let cli = Cli::command();
        for key in super::super::keys::KEYS {
            assert!(find_arg(&cli, key).is_some(), "{} names no argument with {}", key.dotted(), key.env);
        }
        fn walk(cmd: &Command, path: &str) {
            for arg in cmd.get_arguments() {
                let Some(env) = arg.get_env().and_then(|e| e.to_str()) else { continue };
                let known = super::super::keys::KEYS.iter().any(|k| is_for(arg, k))
                    || (arg.get_id() == "config" && env == "ZAVA_CONFIG");
                assert!(known, "{path} --{}: {env} has no key in zava-mcp.toml", arg.get_id());
            }
            for sc in cmd.get_subcommands() {
                walk(sc, &format!("{path} {}", sc.get_name()));
            }
        }
        walk(&cli, "zava-mcp");
    }

    #[test]
    fn the_example_file_in_the_repository_is_what_config_example_prints() {
        let printed = example(&Cli::command());
        let kept = include_str!("../../zava-mcp.example.toml");
        assert!(printed == kept, "run `cargo run -- config example > zava-mcp.example.toml`");
        // It is valid TOML that sets nothing, and every key in it, uncommented with its default, is accepted.
        let parsed = toml::from_str::<toml::Table>(kept).unwrap();
        assert!(parsed.values().all(|s| s.as_table().is_some_and(|t| t.is_empty())), "{parsed:?}");
        let uncommented: String = kept
            .lines()
            .map(|l| if l.starts_with('[') { l.to_owned() } else { l.strip_prefix("# ").unwrap_or("").to_owned() })
            .filter(|l| l.starts_with('[') || (l.contains(" = ") && !l.contains("(not set by default)")))
            .filter(|l| !l.contains(' ') || l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
            .collect::<Vec<_>>()
            .join("\n");
        let file =
            super::super::file::ConfigFile::parse(std::path::Path::new("example"), &uncommented, &Cli::command());
        assert!(file.is_ok(), "{uncommented}\n{:?}", file.err());
    }
}
